"""Rate limits for the forms that send mail (``/subscribe``, ``/manage``).

Counted in the database (table ``rate_limits``), so the limits hold across every
process and machine serving the app. Each key's allowed requests are counted in slots
of a sixtieth of the window; a request is allowed while the slots that overlap the last
window hold fewer than the limit. So no stretch of one window ever holds more than the
limit, also across a boundary (a fixed window would allow twice the limit around one),
at the price of a key waiting up to one slot longer than strictly needed. Refused
requests are not counted: a client over its limit gets its next one as soon as its
oldest counted request leaves the window.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from newsletter.store.database import insert_on_conflict, writing
from newsletter.store.schema import rate_limits

HOUR = 3600
DAY = 24 * HOUR
SLOTS_PER_WINDOW = 60
LONGEST_WINDOW = DAY  # older rows are forgotten


class RateLimiter:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def allow(self, scope: str, key: str, *, limit: int, window: int = HOUR) -> bool:
        """Count one request for ``key`` in ``scope`` unless ``limit`` requests were
        already allowed within the last ``window`` seconds; True if it is allowed."""
        now = int(self.clock())
        slot_seconds = max(1, window // SLOTS_PER_WINDOW)
        slot = now - now % slot_seconds
        bucket = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
        mine = rate_limits.c.bucket == bucket
        with writing(self.engine) as connection:
            # The upsert first: on PostgreSQL its row lock queues concurrent requests
            # for the same key, so two of them cannot both see room for one more.
            upsert = (
                insert_on_conflict(connection, rate_limits)
                .values(bucket=bucket, window_start=slot, hits=1)
                .on_conflict_do_update(
                    index_elements=[rate_limits.c.bucket, rate_limits.c.window_start],
                    set_={"hits": rate_limits.c.hits + 1},
                )
                .returning(rate_limits.c.hits)
            )
            hits_in_slot = connection.execute(upsert).scalar_one()
            # Every slot that overlaps the last window, the oldest one included.
            counted = connection.scalar(
                select(func.coalesce(func.sum(rate_limits.c.hits), 0)).where(
                    mine, rate_limits.c.window_start > now - window - slot_seconds
                )
            )
            allowed = int(counted or 0) <= limit
            if not allowed:
                connection.execute(
                    update(rate_limits)
                    .where(mine, rate_limits.c.window_start == slot)
                    .values(hits=rate_limits.c.hits - 1)
                )
            elif hits_in_slot == 1:
                # A new slot just opened for this key: a cheap moment to forget old ones.
                connection.execute(
                    rate_limits.delete().where(
                        rate_limits.c.window_start < now - LONGEST_WINDOW - HOUR
                    )
                )
        return allowed


def client_key(remote_address: str | None) -> str:
    """What counts as one client: its IP, or its /64 for IPv6 (one household's network,
    where a client can pick any of 2**64 addresses). An IPv4 client seen through an
    IPv6 socket (``::ffff:192.0.2.7``) is that IPv4 address, not the one /64 that every
    such client would share."""
    try:
        address = ipaddress.ip_address(remote_address or "")
    except ValueError:
        return remote_address or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# Gmail delivers j.o.e@, joe@ and joe+anything@ to one inbox, under either domain.
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def address_key(email: str) -> str:
    """What counts as one mailbox for the mail limits, never what is stored: case and a
    ``+tag`` do not make a new one (``Ann+1@Example.org`` and ``ann@example.org`` share a
    limit), nor do dots at Gmail, whose two domains are one (``j.o.e@googlemail.com``
    is ``joe@gmail.com``)."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.partition("+")[0] or local
    if domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", "") or local, "gmail.com"
    return f"{local}@{domain}"
