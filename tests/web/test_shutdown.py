"""``shutdown(app)`` lets go of the database every time it is called.

The first call finishes the queued work and closes the database; a later one (the WSGI
module's at exit, a test's fixture) must not query it again, but whatever used the
store in between (a test reading what the first call flushed) opened connections that
only a shutdown closes. Left open, they are closed by the garbage collector at some
later moment, with psycopg's "connection deleted while still open" ResourceWarning.
"""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import create_engine, text

from newsletter.web import shutdown
from newsletter.web.context import Services


def _backend_alive(url: str, pid: int) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return bool(
                connection.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
            )
    finally:
        engine.dispose()


def test_a_second_shutdown_closes_connections_opened_since_the_first(
    app: Flask, site: Services, database_url: str
) -> None:
    shutdown(app)
    site.store.counts()  # the store is used after the first shutdown
    with site.store.engine.connect() as connection:
        pid = (
            connection.scalar(text("SELECT pg_backend_pid()"))
            if "postgresql" in database_url
            else None
        )
    assert site.store.engine.pool.checkedin() == 1  # type: ignore[attr-defined]

    shutdown(app)

    assert site.store.engine.pool.checkedin() == 0  # type: ignore[attr-defined]
    if pid is not None:  # and PostgreSQL sees the session end
        deadline = time.monotonic() + 30
        while _backend_alive(database_url, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _backend_alive(database_url, pid)
