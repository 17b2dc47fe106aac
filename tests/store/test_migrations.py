"""Schema versions: created on first use, applied once, all or nothing, one at a time."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import Connection, Engine, func, insert, inspect, select, text

from newsletter.errors import StoreError
from newsletter.send import campaign_rows
from newsletter.store import open_store_url
from newsletter.store.database import make_engine
from newsletter.store.link_keys import subscribers_before_4
from newsletter.store.migrations import MIGRATIONS, Migration, current_version, upgrade
from newsletter.store.schema import (
    campaigns,
    ledger,
    ledger_before_14,
    schema_version,
    subscriber_events,
    subscriber_topics,
    subscribers,
)
from newsletter.store.subject_tests import subject_tests
from newsletter.tokens import Signer


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _add_notes_table(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))


def _fail_halfway(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
    raise RuntimeError("disk on fire")


def test_the_schema_is_created_on_first_use(database_url: str, engine: Engine) -> None:
    assert current_version(engine) == 0

    open_store_url(database_url, ["research"]).close()

    assert current_version(engine) == len(MIGRATIONS)
    tables = set(inspect(engine).get_table_names())
    assert {"subscribers", "subscriber_topics", "subscriber_events", "suppressions"} <= tables


def test_the_ledger_is_indexed_by_state_on_sqlite_only(database_url: str, engine: Engine) -> None:
    # SQLite's report reads its per-state counts from the index alone (a million rows:
    # 2.3 s -> 0.3 s). PostgreSQL's report takes 0.21 s with or without it, while every
    # ledger update had to maintain it (an indexed column changes: no HOT update),
    # some 7% of its SendGrid throughput.
    open_store_url(database_url, ["research"]).close()

    indexes = {index["name"] for index in inspect(engine).get_indexes("ledger")}

    assert ("ix_ledger_campaign_id_state" in indexes) == (engine.dialect.name == "sqlite")


def test_an_appended_migration_is_applied_once(engine: Engine) -> None:
    upgrade(engine)
    notes = Migration(len(MIGRATIONS) + 1, "notes", _add_notes_table)

    applied = upgrade(engine, [*MIGRATIONS, notes])
    again = upgrade(engine, [*MIGRATIONS, notes])

    assert applied == [notes]
    assert again == []
    with engine.connect() as connection:
        recorded = connection.execute(
            select(schema_version.c.version, schema_version.c.description)
        )
        assert recorded.all()[-1] == (notes.version, "notes")


def test_a_failing_migration_leaves_nothing_behind(engine: Engine) -> None:
    upgrade(engine)
    broken = Migration(len(MIGRATIONS) + 1, "broken", _fail_halfway)

    with pytest.raises(RuntimeError, match="disk on fire"):
        upgrade(engine, [*MIGRATIONS, broken])

    assert current_version(engine) == len(MIGRATIONS)
    assert not inspect(engine).has_table("half_done")


def test_two_processes_starting_at_once_migrate_once(database_url: str) -> None:
    calls: list[int] = []

    def slow_notes(connection: Connection) -> None:
        calls.append(1)
        time.sleep(0.2)  # the others arrive while this one holds the lock
        _add_notes_table(connection)

    migrations = [*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "notes", slow_notes)]
    engines = [make_engine(database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            upgrade(engine, migrations)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()

    assert errors == []
    assert calls == [1]


def test_a_database_newer_than_the_program_is_refused(engine: Engine) -> None:
    upgrade(engine, [*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "notes", _add_notes_table)])

    with pytest.raises(StoreError) as raised:
        upgrade(engine)
    assert str(raised.value) == (
        f"the database is at schema version {len(MIGRATIONS) + 1}, newer than this program "
        f"knows ({len(MIGRATIONS)}); upgrade the newsletter package"
    )


def test_migrations_must_be_numbered_in_order(engine: Engine) -> None:
    with pytest.raises(StoreError, match=r"numbered 1, 2, 3, \.\.\. in order; got \[1, 3\]"):
        upgrade(engine, [MIGRATIONS[0], Migration(3, "gap", _add_notes_table)])


def test_migration_4_keeps_every_row_and_old_links_work_only_for_their_owners(
    database_url: str, engine: Engine
) -> None:
    upgrade(engine, MIGRATIONS[:3])
    when = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        for id_, email, status, source in [
            (1, "first@example.org", "active", "cli"),
            (2, "pending@example.org", "pending", "signup-form"),
            (3, "newest@example.org", "active", "import:list.csv"),
        ]:
            connection.execute(
                insert(subscribers_before_4).values(
                    id=id_,
                    email=email,
                    email_key=email,
                    name=email.split("@")[0].title(),
                    status=status,
                    attributes={},
                    created_at=when,
                    updated_at=when,
                    source=source,
                    opt_in_at=when,
                )
            )
        connection.execute(insert(subscriber_topics), [{"subscriber_id": 3, "topic": "research"}])
        connection.execute(
            insert(subscriber_events),
            [{"subscriber_id": 3, "at": when, "event": "updated", "source": "", "detail": {}}],
        )
    legacy = URLSafeSerializer("a-secret", salt="newsletter.preferences")
    signer = Signer("a-secret")

    store = open_store_url(database_url, ["research"])  # applies migration 4 and later

    assert current_version(engine) == len(MIGRATIONS)
    newest = store.get(3)
    assert newest is not None
    assert (newest.email, newest.name, newest.topics) == (
        "newest@example.org",
        "Newest",
        ("research",),
    )
    assert len(store.describe("newest@example.org")["events"]) == 1
    assert store.describe("pending@example.org")["status"] == "pending"
    old_link = signer.read_preferences_token(legacy.dumps(3))
    assert store.holder(old_link.subscriber_id, old_link.link_key) == newest
    new_link = signer.read_preferences_token(signer.preferences_token(3, newest.link_key))
    assert store.holder(new_link.subscriber_id, new_link.link_key) == newest
    assert store.holder(3, "someone-else") is None
    # Erasure still cascades to topics and events, and the id is never given again.
    store.forget("newest@example.org")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(subscriber_events)).scalar() == 0
        assert connection.execute(select(func.count()).select_from(subscriber_topics)).scalar() == 0
    newcomer = store.add("newcomer@example.org", source="test")
    assert newcomer.id > 3
    assert store.holder(newcomer.id, None) is None  # old-style links never reach a newcomer
    store.close()


def test_migration_14_gives_the_ledger_a_variant_and_keeps_every_campaign(
    database_url: str, engine: Engine
) -> None:
    upgrade(engine, MIGRATIONS[:13])  # the schema before subject tests
    assert "variant" not in {column["name"] for column in inspect(engine).get_columns("ledger")}
    readers = [1, 2, 3]
    when = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:  # a campaign of version 13, half sent
        connection.execute(
            insert(subscribers),
            [
                {"id": reader, "email": f"r{reader}@x.org", "email_key": f"r{reader}@x.org",
                 "name": "", "status": "active", "attributes": {}, "created_at": when,
                 "updated_at": when, "source": "cli", "opt_in_at": when, "link_key": f"key{reader}"}
                for reader in readers
            ],
        )  # fmt: skip
        connection.execute(
            insert(campaigns).values(
                id=7, slug="old", issue_path="issues/old.md", subject="Old", topics=[],
                provider="outbox", recipients=3, created_at=when,
            )
        )  # fmt: skip
        connection.execute(
            insert(ledger_before_14),
            [
                {"campaign_id": 7, "subscriber_id": reader, "state": state, "attempts": 1,
                 "updated_at": when}
                for reader, state in zip(readers, ["sent", "sent", "pending"], strict=True)
            ],
        )  # fmt: skip

    store = open_store_url(database_url, ["research"])  # applies migration 14
    try:
        assert current_version(engine) == 14
        with engine.connect() as connection:
            rows = connection.execute(
                select(ledger.c.subscriber_id, ledger.c.state, ledger.c.variant).order_by(
                    ledger.c.subscriber_id
                )
            ).all()
            tests = connection.execute(select(func.count()).select_from(subject_tests)).scalar()
        assert [tuple(row) for row in rows] == [
            (readers[0], "sent", None), (readers[1], "sent", None), (readers[2], "pending", None)
        ]  # fmt: skip
        assert tests == 0
        assert campaign_rows.state_counts(store, 7)["pending"] == 1  # the campaign resumes
    finally:
        store.close()
