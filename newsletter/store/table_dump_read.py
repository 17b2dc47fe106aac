"""Reading a database's tables for a dump (:mod:`newsletter.store.table_dump`): one
consistent snapshot, each table's rows in pages in the engine-neutral form (as JSON for a
backup file), and the highest id each sequence handed out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, inspect

from newsletter.store.table_dump import SCHEMA_VERSION_TABLE, TableShape, quoted

_PAGE_BYTES = 4 * 1024 * 1024  # aim for pages of about this size: memory stays flat
_FIRST_PAGE_ROWS = 100


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees every table as of one instant.

    SQLite (WAL): a read transaction; writers go on, and it sees none of their commits.
    PostgreSQL: ``REPEATABLE READ, READ ONLY``, as ``pg_dump`` reads.
    """
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # SQLite takes its snapshot at the first read, not at BEGIN: read now.
        connection.exec_driver_sql(f"SELECT count(*) FROM {SCHEMA_VERSION_TABLE}").scalar()
        yield connection


def row_counts(connection: Connection, names: Iterable[str]) -> dict[str, int]:
    return {
        name: int(connection.exec_driver_sql(f"SELECT count(*) FROM {quoted(name)}").scalar_one())
        for name in names
    }


def read_pages(connection: Connection, shape: TableShape) -> Iterator[list[Sequence[Any]]]:
    """The table's rows in key order, in pages of a few MB, in the engine-neutral form."""
    columns = ", ".join(_select_expression(connection, name, kind) for name, kind in shape.columns)
    order = ", ".join(quoted(name) for name in shape.key)
    sql = f"SELECT {columns} FROM {quoted(shape.name)} ORDER BY {order}"
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        # A server-side cursor: PostgreSQL keeps the rows until they are fetched.
        cursor = driver.cursor(name=f"dump_{shape.name}")
    else:
        cursor = driver.cursor()
    booleans = [i for i, (_, kind) in enumerate(shape.columns) if kind == "boolean"]
    fix_booleans = booleans and connection.dialect.name == "sqlite"
    try:
        cursor.execute(sql)
        size = _FIRST_PAGE_ROWS
        while rows := cursor.fetchmany(size):
            if fix_booleans:
                rows = _as_booleans(rows, booleans)
            yield rows
            size = _next_page_rows(rows)
    finally:
        cursor.close()


def encoded_pages(connection: Connection, shape: TableShape) -> Iterator[tuple[int, bytes]]:
    """:func:`read_pages` as JSON: (rows, a JSON list of them) per page, for a file.

    SQLite writes the JSON itself (``json_array``: no Python object per value, about
    twice as fast), in the very form :func:`orjson.dumps` gives the same rows read from
    PostgreSQL. Floats are left to Python: SQLite prints only 15 digits.
    """
    if connection.dialect.name != "sqlite" or any(kind == "float" for _, kind in shape.columns):
        for rows in read_pages(connection, shape):
            yield len(rows), orjson.dumps(rows)
        return
    values = ", ".join(_sqlite_json_value(name, kind) for name, kind in shape.columns)
    order = ", ".join(quoted(name) for name in shape.key)
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(f"SELECT json_array({values}) FROM {quoted(shape.name)} ORDER BY {order}")
        size = _FIRST_PAGE_ROWS
        while rows := cursor.fetchmany(size):
            page = ("[" + ",".join([row[0] for row in rows]) + "]").encode()
            yield len(rows), page
            size = max(1, min(10_000, len(rows) * _PAGE_BYTES // max(len(page), 1)))
    finally:
        cursor.close()


def _sqlite_json_value(name: str, kind: str) -> str:
    column = quoted(name)
    if kind == "boolean":  # stored as 0 / 1
        return (
            f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN json('true') "
            "ELSE json('false') END"
        )
    return column  # a JSON column's text stays a string: the neutral form


def _select_expression(connection: Connection, name: str, kind: str) -> str:
    column = quoted(name)
    if connection.dialect.name != "postgresql":
        return column  # SQLite keeps every kind in the neutral form already
    if kind == "datetime":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    if kind == "date":
        return f"to_char({column}, 'YYYY-MM-DD')"
    if kind == "json":
        return f"{column}::text"
    return column


def _as_booleans(rows: list[Any], positions: list[int]) -> list[Any]:
    fixed = []
    for row in rows:
        values = list(row)
        for position in positions:
            if values[position] is not None:
                values[position] = values[position] != 0
        fixed.append(values)
    return fixed


def _next_page_rows(rows: list[Any]) -> int:
    """Rows per page for about :data:`_PAGE_BYTES`, judged from the page just read."""
    sample = rows[: min(len(rows), 20)]
    row_bytes = sum(len(str(value)) for row in sample for value in row) / len(sample)
    return max(1, min(10_000, int(_PAGE_BYTES / max(row_bytes, 1.0))))


def last_ids(connection: Connection, shapes: Iterable[TableShape]) -> dict[str, int]:
    """Per table with a sequence, the highest id it ever handed out (0: none yet), so
    that a copy never hands out an id again, not even an erased person's."""
    result = {}
    for shape in shapes:
        if shape.serial is None:
            continue
        highest = connection.exec_driver_sql(
            f"SELECT coalesce(max({quoted(shape.serial)}), 0) FROM {quoted(shape.name)}"
        ).scalar_one()
        result[shape.name] = max(int(highest), _sequence_position(connection, shape))
    return result


def _sequence_position(connection: Connection, shape: TableShape) -> int:
    if connection.dialect.name == "postgresql":
        position = connection.exec_driver_sql(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence(%(table)s, %(column)s))",
            {"table": shape.name, "column": shape.serial},
        ).scalar()
        return int(position or 0)
    if not inspect(connection).has_table("sqlite_sequence"):
        return 0
    position = connection.exec_driver_sql(
        "SELECT max(seq) FROM sqlite_sequence WHERE name = ?", (shape.name,)
    ).scalar()
    return int(position or 0)
