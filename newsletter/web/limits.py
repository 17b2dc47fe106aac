"""Rate limits for the forms that send mail (``/subscribe``, ``/manage``).

Fixed one-hour windows counted in the database (table ``rate_limits``), so
the limits hold across every process and machine serving the app. A fixed window lets
a client spend up to twice its limit around a window boundary; for stopping inbox
flooding and form spam that is good enough, and it costs one upsert per request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from newsletter.store.schema import rate_limits
from newsletter.web.sql import insert_on_conflict, writing

HOUR = 3600


class RateLimiter:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def allow(self, scope: str, key: str, *, per_hour: int) -> bool:
        """Count one attempt for ``key`` in ``scope``; False once it is over ``per_hour``."""
        now = int(self.clock())
        window_start = now - now % HOUR
        bucket = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
        with writing(self.engine) as connection:
            upsert = (
                insert_on_conflict(connection, rate_limits)
                .values(bucket=bucket, window_start=window_start, hits=1)
                .on_conflict_do_update(
                    index_elements=[rate_limits.c.bucket, rate_limits.c.window_start],
                    set_={"hits": rate_limits.c.hits + 1},
                )
                .returning(rate_limits.c.hits)
            )
            hits = connection.execute(upsert).scalar_one()
            if hits == 1:
                # A new window just opened for this key: a cheap moment to forget old ones.
                connection.execute(
                    delete(rate_limits).where(rate_limits.c.window_start < window_start - HOUR)
                )
        return hits <= per_hour


def client_key(remote_address: str | None) -> str:
    """What counts as one client: its IP, or its /64 for IPv6 (one household's network,
    where a client can pick any of 2**64 addresses)."""
    try:
        address = ipaddress.ip_address(remote_address or "")
    except ValueError:
        return remote_address or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
