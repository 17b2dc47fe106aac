"""``newsletter db copy --to URL``: everything in the newsletter's database, into another.

The way to grow from SQLite to PostgreSQL (or back). The source is read in one
consistent snapshot, as a backup reads it, and loaded as a restore loads a file (one
transaction, an empty target only, sequences past every id ever given), with no file
in between.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import URL

from newsletter.config import DATABASE_URL_ENV, Config
from newsletter.errors import StoreError
from newsletter.ops.backup import shown_url
from newsletter.ops.load import Loaded, load_into
from newsletter.store.database import make_engine
from newsletter.store.migrations import recorded_version, upgrade
from newsletter.store.table_dump import TableShape, live_shapes
from newsletter.store.table_dump_read import last_ids, read_pages, row_counts, snapshot


@dataclass(frozen=True)
class Copied:
    loaded: Loaded
    target: str  # the target's URL, without its password
    setting: str  # the one setting to change: NEWSLETTER_DATABASE_URL or database_url


class LiveSource:
    """The tables of a database, read in the snapshot transaction ``connection`` is in."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.schema_version = recorded_version(connection)
        self.shapes = live_shapes(connection)
        self.rows = row_counts(connection, [shape.name for shape in self.shapes])
        self.last_ids = last_ids(connection, self.shapes)
        self._read: dict[str, int] = {}

    def tables(self) -> Iterator[tuple[TableShape, Iterable[list[Any]]]]:
        for shape in self.shapes:
            yield shape, self._pages(shape)

    def _pages(self, shape: TableShape) -> Iterator[list[Any]]:
        count = 0
        for rows in read_pages(self.connection, shape):
            count += len(rows)
            yield rows
        self._read[shape.name] = count

    def verify(self) -> None:
        if self._read != self.rows:
            raise StoreError("the rows read from the database do not match its counts")


def copy_database(config: Config, to_url: str, *, force: bool = False) -> Copied:
    """Copy every table of the newsletter's database into the database at ``to_url``."""
    source_url = config.database
    source = make_engine(source_url)
    target = make_engine(to_url)
    try:
        if _same_database(source.url, target.url):
            raise StoreError(f"--to names the newsletter's own database ({shown_url(to_url)})")
        upgrade(source)  # as every command does: the schema this program describes
        with snapshot(source) as connection:
            loaded = load_into(
                target,
                LiveSource(connection),
                force=force,
                source_name=f"the database {shown_url(source_url)}",
                target=shown_url(to_url),
            )
    finally:
        source.dispose()
        target.dispose()
    setting = DATABASE_URL_ENV if os.environ.get(DATABASE_URL_ENV) else "database_url"
    return Copied(loaded, shown_url(to_url), setting)


def _same_database(one: URL, other: URL) -> bool:
    if one.get_backend_name() == "sqlite" and other.get_backend_name() == "sqlite":
        return bool(one.database) and (
            os.path.realpath(one.database or "") == os.path.realpath(other.database or "")
        )
    return one.render_as_string(hide_password=True) == other.render_as_string(hide_password=True)
