"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL schema.

Other parts of the suite (sending, the web app) can use these too::

    from tests.store.databases import postgres_schema
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections live in a new, empty schema, dropped afterwards.

    Other test runs share the ``test`` database, so nothing may assume it is empty:
    every connection gets ``search_path`` set to a schema of its own.
    """
    name = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


# Every backend waiting, directly or behind another waiter, on the one holding the lock.
_WAITING_BEHIND = text(
    """
    WITH RECURSIVE waiting(pid) AS (
        SELECT CAST(:holder AS integer)
        UNION
        SELECT activity.pid FROM pg_stat_activity AS activity, waiting
        WHERE waiting.pid = ANY(pg_blocking_pids(activity.pid))
    )
    SELECT count(*) - 1 FROM waiting
    """
)


class RowHolder:
    """A PostgreSQL transaction holding row locks (``SELECT ... FOR UPDATE``) on some
    subscribers, so that a test can line up writers behind it in a known order."""

    def __init__(self, url: str, ids: list[int]) -> None:
        self.engine = create_engine(url)
        self.connection = self.engine.connect()
        try:
            self.connection.begin()
            self.connection.execute(
                text("SELECT id FROM subscribers WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
                {"ids": ids},
            )
            self.pid = self.connection.scalar(text("SELECT pg_backend_pid()"))
        except BaseException:
            self.release()  # no connection left for the garbage collector to close
            raise

    def wait_for_waiters(self, count: int, timeout: float = 60.0) -> None:
        """Return once ``count`` other transactions wait (in a queue) behind this one."""
        deadline = time.monotonic() + timeout
        with self.engine.connect() as probe:
            while True:
                waiting = probe.scalar(_WAITING_BEHIND, {"holder": self.pid})
                if waiting is not None and waiting >= count:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{waiting} of {count} writers waited for the rows")
                probe.rollback()
                time.sleep(0.01)

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()
        self.engine.dispose()


@contextmanager
def holding_rows(url: str, ids: list[int]) -> Iterator[RowHolder]:
    """:class:`RowHolder` for the ``with`` block; the locks go when it ends."""
    holder = RowHolder(url, ids)
    try:
        yield holder
    finally:
        holder.release()
