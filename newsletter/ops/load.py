"""Loading a consistent set of tables into an empty database: what ``db restore`` and
``db copy`` share.

One transaction on either engine: the schema is built as the source's version had it,
the rows go in, their counts (and, for a file, its checksum) are checked, the newer
migrations run over them, and the sequences move past every id the source ever gave.
Any failure on the way rolls all of it back and leaves the target as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from newsletter.errors import StoreError
from newsletter.store.migrations import MIGRATIONS, apply_within, recorded_version
from newsletter.store.table_dump import TableShape
from newsletter.store.table_dump_load import (
    drop_schema,
    load_pages,
    loading,
    set_last_ids,
    tables_with_rows,
)
from newsletter.store.table_dump_read import row_counts


class Source(Protocol):
    """Tables read from one consistent state: a backup file, or a live database."""

    schema_version: int
    shapes: list[TableShape]
    rows: dict[str, int]  # table -> rows it holds
    last_ids: dict[str, int]  # table -> the highest id its sequence ever gave

    def tables(self) -> Iterator[tuple[TableShape, Iterable[list[Any]]]]:
        """Each table with its pages of rows, parents before children."""
        ...

    def verify(self) -> None:
        """Raise if what was read is not what the source promised (counts, checksum)."""
        ...


@dataclass(frozen=True)
class Loaded:
    schema_version: int  # the source's
    migrated_to: int  # the target's now
    rows: dict[str, int]


def load_into(
    engine: Engine, source: Source, *, force: bool, source_name: str, target: str
) -> Loaded:
    """Everything in ``source`` into the database of ``engine``, all or nothing.

    Refuses a database that holds anything unless ``force`` (then replaces it, in the
    same transaction), and a source from a newer schema than this program knows.
    ``source_name`` and ``target`` name both in messages (never with a password).
    """
    latest = MIGRATIONS[-1].version
    if source.schema_version > latest:
        raise StoreError(
            f"{source_name} is from schema version {source.schema_version}, newer than "
            f"this program knows ({latest}); upgrade the newsletter package, then try again"
        )
    with loading(engine) as connection:
        found = recorded_version(connection)
        if found > latest:
            raise StoreError(
                f"the database {target} is at schema version {found}, newer than this "
                f"program knows ({latest}); upgrade the newsletter package"
            )
        holding = tables_with_rows(connection)
        if holding and not force:
            raise StoreError(
                f"the database {target} is not empty ({', '.join(holding[:5])}"
                f"{', ...' if len(holding) > 5 else ''} hold rows); restore only into an "
                "empty database, or add --force to replace everything in it"
            )
        drop_schema(connection)
        apply_within(connection, MIGRATIONS[: source.schema_version], record=False)
        loaded = {}
        for shape, pages in source.tables():
            loaded[shape.name] = load_pages(connection, shape.name, shape.column_names, pages)
        source.verify()
        stored = row_counts(connection, loaded)
        if stored != source.rows or loaded != source.rows:
            wrong = sorted(
                name
                for name in set(stored) | set(source.rows)
                if stored.get(name) != source.rows.get(name)
            )
            raise StoreError(
                f"the rows stored do not match the counts of {source_name} (tables: "
                f"{', '.join(wrong)}); nothing was changed"
            )
        if recorded_version(connection) != source.schema_version:
            raise StoreError(
                f"{source_name}: its record of migrations does not end at version "
                f"{source.schema_version}; nothing was changed"
            )
        apply_within(connection, MIGRATIONS[source.schema_version :])
        set_last_ids(connection, source.last_ids)
        return Loaded(source.schema_version, recorded_version(connection), stored)
