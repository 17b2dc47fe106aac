"""``newsletter db backup`` and ``db restore``: the whole database in one file.

A backup is one consistent state of every table (taken while the web app and ``send``
go on writing), in a format that restores into SQLite or PostgreSQL whichever it came
from (:mod:`newsletter.ops.backup_file`). A restore goes into an empty database only,
in one transaction, checked against the file's counts and checksum before it commits,
and migrated forward when the backup is older than this program.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from newsletter.config import Config
from newsletter.ops.backup_file import BackupHeader
from newsletter.ops.backup_reader import BackupReader
from newsletter.ops.backup_writer import BackupWriter
from newsletter.ops.load import Loaded, load_into
from newsletter.store.database import make_engine
from newsletter.store.migrations import recorded_version, upgrade
from newsletter.store.table_dump import live_shapes
from newsletter.store.table_dump_read import encoded_pages, last_ids, snapshot

# Called after each table: (table, rows). The CLI shows progress with it; tests use it
# to write between two tables while a backup reads.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class BackupDone:
    path: Path
    header: BackupHeader
    size: int  # bytes on disk


def backup_database(config: Config, path: Path, *, progress: Progress | None = None) -> BackupDone:
    """Write every table of the newsletter's database to ``path`` (replaced when done)."""
    engine = make_engine(config.database)
    try:
        upgrade(engine)  # as every command does: the schema this program describes
        with snapshot(engine) as connection, BackupWriter(path) as writer:
            version = recorded_version(connection)
            shapes = live_shapes(connection)
            for shape in shapes:
                written = writer.table(shape, encoded_pages(connection, shape))
                if progress is not None:
                    progress(shape.name, written)
            header = writer.finish(
                schema_version=version,
                last_ids=last_ids(connection, shapes),
                engine=connection.dialect.name,
            )
    finally:
        engine.dispose()
    return BackupDone(path, header, path.stat().st_size)


def restore_database(config: Config, path: Path, *, force: bool = False) -> Loaded:
    """Load the backup at ``path`` into the newsletter's database, all or nothing."""
    with BackupReader(path) as reader:
        engine = make_engine(config.database)
        try:
            return load_into(
                engine,
                reader,
                force=force,
                source_name=f"the backup {path}",
                target=shown_url(config.database),
            )
        finally:
            engine.dispose()


def shown_url(url: str) -> str:
    """A database URL as it may be printed: never with its password."""
    return make_url(url).render_as_string(hide_password=True)
