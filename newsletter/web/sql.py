"""Small SQL helpers for the web app's own tables, on either database the store runs on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_on_conflict(connection: Connection, table: Table) -> Any:
    """An ``insert(table)`` with ``on_conflict_do_nothing``/``_do_update`` for this dialect."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it takes the write lock at BEGIN (as the store does),
    so a busy database means waiting, not a "database is locked" error."""
    with engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            yield connection
