"""The lease: one process at a time may send a campaign.

A compare-and-set on the campaign row (``UPDATE ... WHERE lease_owner IS <what we
read>``), so it is atomic on SQLite (the write lock) and PostgreSQL (a row lock, and
the second writer re-checks the condition) alike. A thread renews it while the
process lives. The owner is ``host:pid:random``: a process that died on this host
gives its lease up at once (its pid is gone), one on another host when the lease
expires (``LEASE_SECONDS``).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import threading
from types import TracebackType

from sqlalchemy import Engine, select, update

from newsletter.errors import SendError
from newsletter.send.campaign_rows import Campaign, engine_of, now, write_connection
from newsletter.store import Store
from newsletter.store.schema import campaigns

LEASE_SECONDS = 60.0


class Lease:
    """The right to send one campaign; a context manager (acquire, renew, release)."""

    def __init__(
        self, store: Store | Engine, campaign: Campaign, *, seconds: float = LEASE_SECONDS
    ) -> None:
        self.engine = engine_of(store)
        self.campaign = campaign
        self.seconds = seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> None:
        with write_connection(self.engine) as connection, connection.begin():
            row = connection.execute(
                select(campaigns.c.lease_owner, campaigns.c.lease_expires_at).where(
                    campaigns.c.id == self.campaign.id
                )
            ).one()
            if row.lease_owner and row.lease_expires_at > now() and owner_alive(row.lease_owner):
                raise self._held_by(row.lease_owner, row.lease_expires_at)
            owner_was = (
                campaigns.c.lease_owner.is_(None)
                if row.lease_owner is None
                else campaigns.c.lease_owner == row.lease_owner
            )
            taken = connection.execute(
                update(campaigns)
                .where(campaigns.c.id == self.campaign.id, owner_was)
                .values(lease_owner=self.owner, lease_expires_at=self._expiry())
            ).rowcount
        if taken != 1:
            raise self._held_by("another process", None)
        self._heartbeat = threading.Thread(
            target=self._renew_until_released, name="lease", daemon=True
        )
        self._heartbeat.start()

    def check(self) -> None:
        """Raise if the lease was lost (expired while this process was stalled)."""
        if self.lost.is_set():
            raise SendError(
                f"campaign {self.campaign.slug!r}: this process lost its lease (it stalled "
                f"for over {self.seconds:.0f} seconds) and stopped; send again to resume"
            )

    def renew(self) -> bool:
        with write_connection(self.engine) as connection, connection.begin():
            renewed = connection.execute(
                update(campaigns)
                .where(campaigns.c.id == self.campaign.id, campaigns.c.lease_owner == self.owner)
                .values(lease_expires_at=self._expiry())
            ).rowcount
        if not renewed:
            self.lost.set()
        return bool(renewed)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with write_connection(self.engine) as connection, connection.begin():
            connection.execute(
                update(campaigns)
                .where(campaigns.c.id == self.campaign.id, campaigns.c.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            if not self.renew():
                return

    def _expiry(self) -> dt.datetime:
        return now() + dt.timedelta(seconds=self.seconds)

    def _held_by(self, owner: str, until: dt.datetime | None) -> SendError:
        who = _process_of(owner)
        expiry = f" (its lease runs until {until:%H:%M:%S} UTC)" if until else ""
        return SendError(
            f"campaign {self.campaign.slug!r} is being sent by {who}{expiry}; two senders "
            "would mail people twice, so this one stops. Wait for it to finish, or if it "
            "was killed on another machine, send again once the lease has run out"
        )


def owner_alive(owner: str) -> bool:
    """False only when the owner is a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_holder(store: Store, slug: str) -> str | None:
    """Who is sending campaign ``slug`` right now (``process 123 on host``), or None when
    nobody is: no lease, an expired one, or one whose process on this host is gone (the
    next :meth:`Lease.acquire` takes that over). ``run-due`` asks it after a send raised,
    to tell "left to the process sending it" from "held, for this reason"."""
    with store.engine.connect() as connection:
        row = connection.execute(
            select(campaigns.c.lease_owner, campaigns.c.lease_expires_at).where(
                campaigns.c.slug == slug
            )
        ).one_or_none()
    if row is None or row.lease_owner is None or row.lease_expires_at <= now():
        return None
    if not owner_alive(row.lease_owner):
        return None
    return _process_of(row.lease_owner)


def _process_of(owner: str) -> str:
    """``host:pid:random`` as a reader says it: ``process 123 on host``."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return f"process {pid} on {host}" if pid else owner
