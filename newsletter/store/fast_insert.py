"""INSERT many rows at the driver's speed: an executemany (COPY on PostgreSQL) with
each value converted by its column's bind processor alone."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import JSON, Connection, Table, insert


def insert_many(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    shared: Mapping[str, Any] = MappingProxyType({}),
) -> None:
    """INSERT ``rows``, each with the ``shared`` values too, by the driver's executemany.

    SQLAlchemy's per-row parameter handling costs about 25 µs a row, most of an
    import's time. Here values go to the driver after only their column's bind
    processor (datetimes to text on SQLite, JSON), and shared values and empty JSON
    objects are converted once. Columns a row does not name are left to their default.
    """
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(row), []).append(row)
    for same_columns in by_columns.values():
        _insert_same_columns(connection, table, same_columns, shared)


def _insert_same_columns(
    connection: Connection, table: Table, rows: list[dict[str, Any]], shared: Mapping[str, Any]
) -> None:
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=[*rows[0], *shared])
    order = (
        [compiled.binds[name].key for name in compiled.positiontup or ()]
        if compiled.positional
        else [*rows[0], *shared]
    )
    processor = {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    }

    def driver_value(name: str, value: Any) -> Any:
        convert = processor[name]
        return value if convert is None or value is None else convert(value)

    template = [driver_value(name, shared[name]) if name in shared else None for name in order]
    per_row = [
        (index, name, processor[name]) for index, name in enumerate(order) if name not in shared
    ]
    empty_json = {
        name: driver_value(name, {}) for name in order if isinstance(table.c[name].type, JSON)
    }
    value_rows: list[list[Any]] = []
    for row in rows:
        values = template.copy()
        for index, name, convert in per_row:
            value = row[name]
            if value is None or convert is None:  # most consent columns are empty
                values[index] = value
            elif value == {} and name in empty_json:  # most rows have no attributes
                values[index] = empty_json[name]
            else:
                values[index] = convert(value)
        value_rows.append(values)
    cursor = connection.connection.cursor()
    try:
        if dialect.name == "postgresql":
            # COPY: a third of executemany's time, which psycopg spends in Python per row.
            from psycopg import sql as psycopg_sql  # only installed for PostgreSQL

            statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN").format(
                psycopg_sql.Identifier(table.name),
                psycopg_sql.SQL(", ").join(map(psycopg_sql.Identifier, order)),
            )
            with cursor.copy(statement) as copy:
                for values in value_rows:
                    copy.write_row(values)
        else:
            cursor.executemany(
                str(compiled),
                value_rows
                if compiled.positional
                else [dict(zip(order, values, strict=True)) for values in value_rows],
            )
    finally:
        cursor.close()
