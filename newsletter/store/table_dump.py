"""Every row of every table, out of one database and into another, on either engine.

The SQL half of ``newsletter db backup``, ``restore`` and ``copy`` (the workflows are in
:mod:`newsletter.ops`). Rows travel in one engine-neutral form, so a dump of SQLite
loads into PostgreSQL and back:

| kind | value |
| --- | --- |
| integer, float, text | as is |
| boolean | ``True`` / ``False`` |
| datetime | UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (how SQLite keeps it) |
| date | ``YYYY-MM-DD`` |
| json | the JSON document as text (how both engines keep it) |

Reading happens inside :func:`snapshot` (one consistent read of every table while the
web app and ``send`` go on writing); loading inside :func:`loading` (one transaction:
everything or nothing). Both stream pages of rows, so memory stays flat however large
the tables are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    TypeDecorator,
    inspect,
)

from newsletter.errors import StoreError
from newsletter.store.tables import ENGINE_TABLES, schema_tables

KINDS = ("integer", "float", "text", "boolean", "datetime", "date", "json")
SCHEMA_VERSION_TABLE = "schema_version"
_PAGE_BYTES = 4 * 1024 * 1024  # aim for pages of about this size: memory stays flat
_FIRST_PAGE_ROWS = 100


@dataclass(frozen=True)
class TableShape:
    """A table as a dump carries it: its columns in order, each with its kind."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (column, kind)
    key: tuple[str, ...]  # the primary key: rows are read in this order
    serial: str | None  # the column whose values a sequence hands out (ids), if any

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


def shape_of(table: Table) -> TableShape:
    serial = table.autoincrement_column
    return TableShape(
        name=table.name,
        columns=tuple((column.name, column_kind(table, column)) for column in table.columns),
        key=tuple(column.name for column in table.primary_key.columns),
        serial=serial.name if serial is not None else None,
    )


def column_kind(table: Table, column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, TypeDecorator):  # UtcDateTime: judged by what it stores
        kind = kind.impl_instance
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, Float | Numeric):
        return "float"
    if isinstance(kind, DateTime):
        return "datetime"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, String):  # Text too
        return "text"
    raise StoreError(
        f"column {table.name}.{column.name} has type {kind!r}, which backups cannot carry; "
        f"give it one of the kinds in newsletter/store/table_dump.py ({', '.join(KINDS)})"
    )


def live_shapes(connection: Connection) -> list[TableShape]:
    """The shapes of the tables in this database, parents before children.

    Every table found must be one the schema's modules describe, with the same columns:
    a backup never leaves a table or a column out without saying so.
    """
    inspector = inspect(connection)
    live = set(inspector.get_table_names()) - ENGINE_TABLES
    tables = schema_tables()
    known = {table.name for table in tables}
    unknown = sorted(live - known)
    if unknown:
        raise StoreError(
            f"the database has tables no module of newsletter/store describes: "
            f"{', '.join(unknown)}; a backup would leave them out. Describe them on "
            "newsletter.store.schema.metadata"
        )
    missing = sorted(known - live)
    if missing:
        raise StoreError(
            f"the database lacks the tables {', '.join(missing)}; run 'newsletter db upgrade'"
        )
    shapes = []
    for table in tables:
        found = {column["name"] for column in inspector.get_columns(table.name)}
        described = {column.name for column in table.columns}
        if found != described:
            raise StoreError(
                f"table {table.name}: the database has the columns {sorted(found)}, the "
                f"schema describes {sorted(described)}; run 'newsletter db upgrade'"
            )
        shapes.append(shape_of(table))
    return shapes


# -- reading ---------------------------------------------------------------------------


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
        name: int(connection.exec_driver_sql(f"SELECT count(*) FROM {_quote(name)}").scalar_one())
        for name in names
    }


def read_pages(connection: Connection, shape: TableShape) -> Iterator[list[Sequence[Any]]]:
    """The table's rows in key order, in pages of a few MB, in the engine-neutral form."""
    columns = ", ".join(_select_expression(connection, name, kind) for name, kind in shape.columns)
    order = ", ".join(_quote(name) for name in shape.key)
    sql = f"SELECT {columns} FROM {_quote(shape.name)} ORDER BY {order}"
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
    order = ", ".join(_quote(name) for name in shape.key)
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(f"SELECT json_array({values}) FROM {_quote(shape.name)} ORDER BY {order}")
        size = _FIRST_PAGE_ROWS
        while rows := cursor.fetchmany(size):
            page = ("[" + ",".join([row[0] for row in rows]) + "]").encode()
            yield len(rows), page
            size = max(1, min(10_000, len(rows) * _PAGE_BYTES // max(len(page), 1)))
    finally:
        cursor.close()


def _sqlite_json_value(name: str, kind: str) -> str:
    column = _quote(name)
    if kind == "boolean":  # stored as 0 / 1
        return (
            f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN json('true') "
            "ELSE json('false') END"
        )
    return column  # a JSON column's text stays a string: the neutral form


def _select_expression(connection: Connection, name: str, kind: str) -> str:
    column = _quote(name)
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
            f"SELECT coalesce(max({_quote(shape.serial)}), 0) FROM {_quote(shape.name)}"
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


# -- loading ---------------------------------------------------------------------------


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
        if connection.exec_driver_sql(f"SELECT 1 FROM {_quote(name)} LIMIT 1").first()
    ]


def drop_schema(connection: Connection) -> None:
    """Drop every table of the schema that exists here (the migrations build them again)."""
    present = set(inspect(connection).get_table_names())
    ours = [table.name for table in reversed(schema_tables()) if table.name in present]
    if not ours:
        return
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"DROP TABLE {', '.join(map(_quote, ours))} CASCADE")
        return
    for name in ours:
        connection.exec_driver_sql(f"DROP TABLE {_quote(name)}")
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
    names = ", ".join(_quote(name) for name in columns)
    driver = connection.connection.driver_connection
    assert driver is not None
    loaded = 0
    if connection.dialect.name == "postgresql":
        # COPY: PostgreSQL parses each value as its column's type (times as UTC, above).
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {_quote(table)} ({names}) FROM STDIN") as copy,
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
            cursor.executemany(f"INSERT INTO {_quote(table)} ({names}) VALUES ({marks})", rows)
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
                f"(SELECT coalesce(max({_quote(serial.name)}), 0) FROM {_quote(name)}), "
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


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise StoreError(f"unexpected table or column name {name!r}")
    return f'"{name}"'
