"""Engines for the two supported databases, set up for several processes at once.

SQLite (the default) is shared by the web app and the CLI, so every connection gets
WAL (readers never block the writer), a busy timeout (a writer waits for another
instead of failing), ``synchronous=NORMAL`` (durable with WAL at a fraction of
the fsyncs) and foreign keys. Python's sqlite3 module would open transactions
lazily and run DDL outside them; here the store issues ``BEGIN`` itself, and
``BEGIN IMMEDIATE`` for connections marked ``write=True``, so a read-then-write
transaction takes the write lock up front instead of failing with "database is
locked" when another process wrote in between.

PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from newsletter.errors import StoreError

SQLITE_BUSY_TIMEOUT_SECONDS = 30


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; ``postgres://`` and ``postgresql://`` mean psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"database URL {url!r} is not valid; use sqlite:///path/to/newsletter.db or "
            "postgresql+psycopg://user@host/dbname (set database_url in newsletter.yaml "
            "or NEWSLETTER_DATABASE_URL)"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: only SQLite "
            "and PostgreSQL are supported"
        )
    if backend == "sqlite":
        return _sqlite_engine(parsed, **options)
    try:
        return create_engine(parsed, pool_pre_ping=True, **options)
    except (ImportError, NoSuchModuleError):
        raise StoreError(
            "PostgreSQL needs the psycopg driver: pip install 'newsletter[postgres]'"
        ) from None


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it takes the write lock at BEGIN (``BEGIN
    IMMEDIATE``), so a busy database means waiting, not a "database is locked" error."""
    with engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            yield connection


def insert_on_conflict(connection: Connection, table: Table) -> Any:
    """An ``insert(table)`` with ``on_conflict_do_nothing``/``_do_update`` for this dialect."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def analyze(engine: Engine, *tables: Table) -> None:
    """Refresh PostgreSQL's planner statistics for ``tables`` after a bulk write.

    Until autovacuum gets to a table (a minute or more), the planner takes a freshly
    filled table for nearly empty, and the keyset pages of a stream or a campaign each
    read every remaining row: quadratic in the list's size. SQLite's planner needs no
    statistics for those queries, so this does nothing there.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in tables:
            connection.execute(text(f'ANALYZE "{table.name}"'))


def _sqlite_engine(url: Any, **options: Any) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every pooled connection would see its own database.
        options.setdefault("poolclass", StaticPool)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    engine = create_engine(url, connect_args=connect_args, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        if not in_memory:
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent setting), waiting out a concurrent switch.

    Switching needs an exclusive lock, and when several processes open a new database at
    once SQLite can answer "database is locked" at once instead of using the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
