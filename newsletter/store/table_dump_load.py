"""Loading a dump into a database (:mod:`newsletter.store.table_dump`): one transaction
for the whole load, the old tables dropped, pages of rows inserted (COPY on PostgreSQL)
and each sequence moved past the highest id it ever handed out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, inspect

from newsletter.errors import StoreError
from newsletter.store.table_dump import SCHEMA_VERSION_TABLE, quoted
from newsletter.store.tables import ENGINE_TABLES, schema_tables


@contextmanager
def loading(engine: Engine) -> Iterator[Connection]:
    """One write transaction for a whole load: committed if the block ends normally,
    rolled back (leaving the database as it was) if it raises.

    SQLite: foreign keys off until the end (tables are dropped and rebuilt as the
    migrations do), checked with ``PRAGMA foreign_key_check`` before the commit.
    PostgreSQL: times are read as UTC, and the migrations' advisory lock is held.
    """
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            driver.execute("PRAGMA foreign_keys=OFF")  # ignored inside a transaction
        try:
            connection.execution_options(write=True)
            with connection.begin():
                if not sqlite:
                    connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
                yield connection
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                driver.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise StoreError(
            f"{len(broken)} rows would point at nothing (first: {tuple(broken[0])}); "
            "nothing was changed"
        )


def tables_with_rows(connection: Connection) -> list[str]:
    """The tables that hold anything (the record of applied migrations aside)."""
    names = set(inspect(connection).get_table_names()) - ENGINE_TABLES - {SCHEMA_VERSION_TABLE}
    return [
        name
        for name in sorted(names)
        if connection.exec_driver_sql(f"SELECT 1 FROM {quoted(name)} LIMIT 1").first()
    ]


def drop_schema(connection: Connection) -> None:
    """Drop every table of the schema that exists here (the migrations build them again)."""
    present = set(inspect(connection).get_table_names())
    ours = [table.name for table in reversed(schema_tables()) if table.name in present]
    if not ours:
        return
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"DROP TABLE {', '.join(map(quoted, ours))} CASCADE")
        return
    for name in ours:
        connection.exec_driver_sql(f"DROP TABLE {quoted(name)}")
    if "sqlite_sequence" in present:
        connection.exec_driver_sql("DELETE FROM sqlite_sequence")


def load_pages(
    connection: Connection, table: str, columns: Sequence[str], pages: Iterable[list[Any]]
) -> int:
    """Insert pages of rows (in the neutral form) into ``table``; the number of rows.

    A row the database refuses (SQLite does not enforce a text column's length,
    PostgreSQL does) raises :class:`StoreError` naming the table and the reason.
    """
    try:
        return _load_pages(connection, table, columns, pages)
    except connection.dialect.loaded_dbapi.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise StoreError(
            f"table {table}: the database refused a row ({reason}); nothing was changed"
        ) from None


def _load_pages(
    connection: Connection, table: str, columns: Sequence[str], pages: Iterable[list[Any]]
) -> int:
    names = ", ".join(quoted(name) for name in columns)
    driver = connection.connection.driver_connection
    assert driver is not None
    loaded = 0
    if connection.dialect.name == "postgresql":
        # COPY: PostgreSQL parses each value as its column's type (times as UTC, above).
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {quoted(table)} ({names}) FROM STDIN") as copy,
        ):
            for rows in pages:
                for row in rows:
                    copy.write_row(row)
                loaded += len(rows)
        return loaded
    marks = ", ".join("?" * len(columns))
    cursor = driver.cursor()
    try:
        for rows in pages:
            cursor.executemany(f"INSERT INTO {quoted(table)} ({names}) VALUES ({marks})", rows)
            loaded += len(rows)
    finally:
        cursor.close()
    return loaded


def set_last_ids(connection: Connection, last: dict[str, int]) -> None:
    """Move each table's sequence to the highest id it ever handed out (never back)."""
    tables = {table.name: table for table in schema_tables()}
    for name, highest in last.items():
        table = tables.get(name)
        serial = table.autoincrement_column if table is not None else None
        if table is None or serial is None:
            continue
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "WITH seq AS (SELECT pg_get_serial_sequence(%(table)s, %(column)s) AS name), "
                "top AS (SELECT GREATEST(%(highest)s, "
                f"(SELECT coalesce(max({quoted(serial.name)}), 0) FROM {quoted(name)}), "
                "coalesce(pg_sequence_last_value((SELECT name FROM seq)), 0)) AS id) "
                "SELECT setval((SELECT name FROM seq), GREATEST(top.id, 1), top.id > 0) FROM top",
                {"table": name, "column": serial.name, "highest": highest},
            )
        elif table.dialect_options["sqlite"]["autoincrement"] and highest > 0:
            # Without AUTOINCREMENT SQLite takes the largest id plus one; with it, this.
            current = connection.exec_driver_sql(
                "SELECT max(seq) FROM sqlite_sequence WHERE name = ?", (name,)
            ).scalar()
            connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
            connection.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                (name, max(highest, int(current or 0))),
            )
