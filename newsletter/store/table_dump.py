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

Reading happens inside :func:`~newsletter.store.table_dump_read.snapshot` (one
consistent read of every table while the web app and ``send`` go on writing); loading
inside :func:`~newsletter.store.table_dump_load.loading` (one transaction: everything
or nothing). Both stream pages of rows, so memory stays flat however large
the tables are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
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


def quoted(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise StoreError(f"unexpected table or column name {name!r}")
    return f'"{name}"'
