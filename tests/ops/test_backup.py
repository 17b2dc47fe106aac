"""``db backup`` and ``db restore``: every table, one moment, either engine, all or nothing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from newsletter.config import Config
from newsletter.errors import StoreError
from newsletter.ops.backup import backup_database, restore_database
from newsletter.ops.backup_file import HEADER_BYTES, MAGIC, BackupError
from newsletter.store import open_store_url
from newsletter.store.database import make_engine
from newsletter.store.migrations import MIGRATIONS
from newsletter.store.tables import ENGINE_TABLES
from tests.ops.conftest import contents, fill
from tests.store.databases import postgres_schema


def at(config: Config, database_url: str) -> Config:
    return config.model_copy(update={"database_url": database_url})


def live_tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - ENGINE_TABLES
    finally:
        engine.dispose()


def rewrite_header(path: Path, **changes: object) -> None:
    """Edit the header in place, as a newer program's (or a tampered) backup would have it."""
    with path.open("r+b") as handle:
        block = handle.read(HEADER_BYTES)
        header = orjson.loads(block[len(MAGIC) :])
        header.update(changes)
        text = MAGIC + orjson.dumps(header)
        handle.seek(0)
        handle.write(text + b" " * (HEADER_BYTES - len(text) - 1) + b"\n")


def test_every_table_of_the_live_schema_is_in_the_backup(
    config: Config, database_url: str, tmp_path: Path
) -> None:
    # Tables that later migrations add come in through the schema's metadata: if one
    # were left out of backups, this fails.
    open_store_url(database_url, config.topic_ids).close()

    done = backup_database(at(config, database_url), tmp_path / "all.backup")

    assert {shape.name for shape in done.header.tables} == live_tables(database_url)
    assert done.header.schema_version == MIGRATIONS[-1].version


def test_a_restore_gives_back_every_row_of_every_table(
    config: Config, filled: tuple[str, str], tmp_path: Path
) -> None:
    source, target = filled
    before = contents(source)
    assert all(before.values()), [name for name, rows in before.items() if not rows]

    backup_database(at(config, source), tmp_path / "news.backup")
    loaded = restore_database(at(config, target), tmp_path / "news.backup")

    assert contents(target) == before
    assert loaded.rows == {name: len(rows) for name, rows in before.items()}


def test_the_same_rows_give_the_same_file_body_on_either_engine(
    config: Config, filled: tuple[str, str], tmp_path: Path
) -> None:
    source, target = filled
    first = backup_database(at(config, source), tmp_path / "first.backup")
    restore_database(at(config, target), tmp_path / "first.backup")

    second = backup_database(at(config, target), tmp_path / "second.backup")

    # One neutral form, byte for byte, whichever engine the rows were read from.
    assert first.header.body_sha256 == second.header.body_sha256
    assert first.path.read_bytes()[HEADER_BYTES:] == second.path.read_bytes()[HEADER_BYTES:]


def test_a_backup_is_one_moment_while_others_write(
    config: Config, database_url: str, tmp_path: Path
) -> None:
    store = open_store_url(database_url, config.topic_ids)
    ann = store.add("ann@example.org", topics=("research",), source="cli")

    def write_meanwhile(table: str, rows: int) -> None:
        # Between two tables of the backup, another connection commits a change that
        # touches both sides: an opt-out (subscribers) with its event (subscriber_events).
        if table == "subscribers":
            store.unsubscribe(ann.id, source="one-click")
            store.add("bob@example.org", source="cli")

    backup_database(at(config, database_url), tmp_path / "moment.backup", progress=write_meanwhile)
    store.close()
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    restore_database(at(config, restored), tmp_path / "moment.backup")

    again = open_store_url(restored, config.topic_ids)
    history = again.describe("ann@example.org")
    assert history["status"] == "active"
    assert [event["event"] for event in history["events"]] == []
    assert again.find("bob@example.org") is None
    again.close()


def test_a_database_that_is_not_empty_is_refused_unless_forced(
    config: Config, database_url: str, tmp_path: Path
) -> None:
    store = open_store_url(database_url, config.topic_ids)
    store.add("kept@example.org", source="cli")
    backup_database(at(config, database_url), tmp_path / "one.backup")
    store.add("later@example.org", source="cli")

    with pytest.raises(StoreError, match=r"is not empty .* add --force"):
        restore_database(at(config, database_url), tmp_path / "one.backup")
    assert store.find("later@example.org") is not None

    restore_database(at(config, database_url), tmp_path / "one.backup", force=True)
    assert store.find("later@example.org") is None
    assert store.find("kept@example.org") is not None
    store.close()


def test_an_empty_schema_counts_as_empty(
    config: Config, pair: tuple[str, str], tmp_path: Path
) -> None:
    source, target = pair
    open_store_url(source, config.topic_ids).close()
    open_store_url(target, config.topic_ids).close()  # e.g. after 'newsletter db upgrade'
    backup_database(at(config, source), tmp_path / "empty.backup")

    loaded = restore_database(at(config, target), tmp_path / "empty.backup")

    assert loaded.migrated_to == MIGRATIONS[-1].version


def test_a_backup_from_a_newer_schema_is_refused(
    config: Config, database_url: str, tmp_path: Path
) -> None:
    open_store_url(database_url, config.topic_ids).close()
    path = tmp_path / "future.backup"
    backup_database(at(config, database_url), path)
    rewrite_header(path, schema_version=MIGRATIONS[-1].version + 1)
    target = f"sqlite:///{tmp_path / 'target.db'}"

    with pytest.raises(
        StoreError, match=r"newer than this program knows .* upgrade the newsletter"
    ):
        restore_database(at(config, target), path)


@pytest.mark.parametrize(
    "damage",
    ["flipped byte", "truncated", "wrong count", "unfinished"],
)
def test_a_damaged_backup_leaves_the_target_empty(
    config: Config,
    pair: tuple[str, str],
    runner: CliRunner,
    secret: str,
    tmp_path: Path,
    damage: str,
) -> None:
    source, target = pair
    fill(config, source, runner)
    path = tmp_path / "news.backup"
    backup_database(at(config, source), path)
    data = bytearray(path.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(data)
    elif damage == "truncated":
        path.write_bytes(data[: HEADER_BYTES + (len(data) - HEADER_BYTES) // 2])
    elif damage == "wrong count":
        header = orjson.loads(bytes(data[len(MAGIC) : HEADER_BYTES]))
        header["tables"][-1]["rows"] += 1
        rewrite_header(path, tables=header["tables"])
    else:  # what a backup killed before its end leaves (under a temporary name)
        placeholder = MAGIC + b'{"complete": false}'
        padding = b" " * (HEADER_BYTES - len(placeholder) - 1) + b"\n"
        path.write_bytes(placeholder + padding + bytes(data[HEADER_BYTES:]))

    with pytest.raises(BackupError):
        restore_database(at(config, target), path)

    assert live_tables(target) == set()  # nothing half-restored: not even a table


def test_a_file_that_is_no_backup_is_refused_in_one_line(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text("email\nann@example.org\n")

    with pytest.raises(BackupError) as raised:
        restore_database(at(config, f"sqlite:///{tmp_path / 't.db'}"), path)

    assert str(raised.value) == f"{path} is not a newsletter backup (see 'newsletter db backup')"


def test_a_failed_backup_leaves_the_previous_file_alone(
    config: Config, database_url: str, tmp_path: Path
) -> None:
    open_store_url(database_url, config.topic_ids).close()
    path = tmp_path / "news.backup"
    path.write_bytes(b"yesterday's backup")

    def fail(table: str, rows: int) -> None:
        raise RuntimeError("disk pulled out")

    with pytest.raises(RuntimeError):
        backup_database(at(config, database_url), path, progress=fail)

    assert path.read_bytes() == b"yesterday's backup"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".news.backup")] == []


def test_a_row_the_target_refuses_leaves_it_empty_and_names_the_table(
    config: Config, postgres_url: str, tmp_path: Path
) -> None:
    # SQLite does not enforce a text column's length; PostgreSQL does. Refused halfway
    # through the load, the restore rolls back everything it did.
    source = f"sqlite:///{tmp_path / 'source.db'}"
    store = open_store_url(source, config.topic_ids)
    for n in range(50):
        store.add(f"reader{n}@example.org", source="cli")
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE subscribers SET link_key = 'longer-than-sixteen' WHERE id = 40"
        )
    store.close()
    backup_database(at(config, source), tmp_path / "news.backup")

    with postgres_schema(postgres_url) as target:
        with pytest.raises(StoreError) as refused:
            restore_database(at(config, target), tmp_path / "news.backup")

        assert live_tables(target) == set()
    assert str(refused.value).startswith(
        "table subscribers: the database refused a row (value too long for type character "
        "varying(16)); nothing was changed"
    )
