"""After a restore, on either engine, everything behaves as it did before the backup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from itsdangerous import URLSafeSerializer
from sqlalchemy import insert, select

from newsletter.cli import cli
from newsletter.config import Config, load_config
from newsletter.errors import StoreError
from newsletter.ops.backup import backup_database, restore_database
from newsletter.ops.backup_writer import BackupWriter
from newsletter.send import campaign_rows
from newsletter.store import open_store_url
from newsletter.store.database import make_engine
from newsletter.store.link_keys import subscribers_before_4
from newsletter.store.migrations import MIGRATIONS, recorded_version, upgrade
from newsletter.store.schema import ledger_before_14
from newsletter.store.schema import schema_version as schema_version_table
from newsletter.store.table_dump import shape_of
from newsletter.store.table_dump_read import encoded_pages, last_ids, snapshot
from newsletter.store.tables import schema_tables
from newsletter.tokens import Signer
from newsletter.web import create_app, shutdown
from tests.conftest import SEED_ISSUE
from tests.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.ops.conftest import ERASED, OPTED_OUT, fill, newsletter_env
from tests.web.conftest import csrf_of

WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
READER = "hannah.becker@example.net"  # active, in the example list


def at(config: Config, database_url: str) -> Config:
    return config.model_copy(update={"database_url": database_url})


def moved(config: Config, pair: tuple[str, str], tmp_path: Path) -> Config:
    """Back up the source, restore into the target: the config of the restored list."""
    source, target = pair
    backup_database(at(config, source), tmp_path / "news.backup")
    restore_database(at(config, target), tmp_path / "news.backup")
    return at(config, target)


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    with FakeSendGrid() as fake:
        yield fake


def test_erased_addresses_stay_refused_by_add_and_import(
    config: Config, pair: tuple[str, str], runner: CliRunner, secret: str, tmp_path: Path
) -> None:
    fill(config, pair[0], runner)
    restored = moved(config, pair, tmp_path)
    (tmp_path / "again.csv").write_text(f"email,name\n{ERASED},Erased Again\n", encoding="utf-8")

    store = open_store_url(restored.database, restored.topic_ids)
    assert store.is_erased(ERASED)
    with pytest.raises(StoreError, match="erased"):
        store.add(ERASED, source="cli")
    store.close()
    output = newsletter_env(
        runner, {"NEWSLETTER_DATABASE_URL": restored.database}, "subscribers", "import",
        str(tmp_path / "again.csv"),
    )  # fmt: skip
    assert "added 0," in output
    store = open_store_url(restored.database, restored.topic_ids)
    assert store.find(ERASED) is None
    store.close()


def test_the_consent_record_and_opt_outs_come_back(
    config: Config, pair: tuple[str, str], runner: CliRunner, secret: str, tmp_path: Path
) -> None:
    fill(config, pair[0], runner)
    before = open_store_url(pair[0], config.topic_ids)
    expected = {email: before.describe(email) for email in (OPTED_OUT, READER)}
    before.close()

    restored = moved(config, pair, tmp_path)

    after = open_store_url(restored.database, restored.topic_ids)
    assert {email: after.describe(email) for email in expected} == expected
    assert expected[OPTED_OUT]["status"] == "unsubscribed"
    after.close()


def test_an_erased_address_typed_into_the_signup_form_gets_one_mail_a_day(
    config: Config, pair: tuple[str, str], runner: CliRunner, secret: str, tmp_path: Path
) -> None:
    fill(config, pair[0], runner)
    restored = moved(config, pair, tmp_path)
    sent_before = set((restored.outbox_dir / "new").iterdir())  # the campaign fill() sent
    app = create_app(restored, {"TESTING": True})
    try:
        client = app.test_client()
        for _ in range(2):
            form = {"email": ERASED, "name": "Erased", "topics": ["research"], "consent": "yes",
                    "csrf_token": csrf_of(client.get("/subscribe"))}  # fmt: skip
            assert client.post("/subscribe", data=form).status_code == 200
        app.extensions["newsletter"].postman.drain()
    finally:
        shutdown(app)
    mail = set((restored.outbox_dir / "new").iterdir()) - sent_before
    to_erased = [path for path in mail if ERASED in path.read_text(encoding="utf-8")]
    assert len(to_erased) == 1  # the second signup sent nothing: the hash was restored


def test_old_unsubscribe_links_work_after_a_restore(
    config: Config, pair: tuple[str, str], runner: CliRunner, secret: str, tmp_path: Path
) -> None:
    fill(config, pair[0], runner)
    before = open_store_url(pair[0], config.topic_ids)
    reader = before.find(READER)
    assert reader is not None and reader.status == "active"
    before.close()
    link = f"/u/{Signer(secret).unsubscribe_token(reader.id, 1, reader.link_key)}"

    restored = moved(config, pair, tmp_path)
    app = create_app(restored, {"TESTING": True})
    try:
        answer = app.test_client(use_cookies=False).post(
            link, data={"List-Unsubscribe": "One-Click"}
        )
    finally:
        shutdown(app)

    assert answer.status_code == 200
    after = open_store_url(restored.database, restored.topic_ids)
    assert after.describe(READER)["status"] == "unsubscribed"
    after.close()


def test_a_stopped_campaign_resumes_after_a_restore_without_sending_anyone_twice(
    project: Path,
    pair: tuple[str, str],
    runner: CliRunner,
    secret: str,
    sendgrid: FakeSendGrid,
    tmp_path: Path,
) -> None:
    source, target = pair
    settings = yaml.safe_load((project / "newsletter.yaml").read_text(encoding="utf-8"))
    settings.update(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    settings["sending"] = {"retries": 1, "retry_delay": 0.01, "retry_max_delay": 0.05}
    (project / "newsletter.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    config = load_config(project / "newsletter.yaml")
    store = open_store_url(source, config.topic_ids)
    for n in range(50):
        store.add(f"reader{n}@example.org", topics=("research",), source="cli")
    store.close()
    sendgrid.normal_next()
    sendgrid.drop_next(deliver=True)  # delivered, but the answer is lost: unknown
    sendgrid.normal_next()
    sendgrid.fail_next(400)  # the campaign stops here, the rest pending
    first = runner.invoke(
        cli, ["send", SEED_ISSUE, "--yes"], env={"NEWSLETTER_DATABASE_URL": source}
    )
    assert first.exit_code == 1, first.output

    restored = moved(config, pair, tmp_path)
    store = open_store_url(target, config.topic_ids)
    counts = campaign_rows.state_counts(store, 1)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (20, 10, 20)
    again = runner.invoke(
        cli, ["send", SEED_ISSUE, "--yes"], env={"NEWSLETTER_DATABASE_URL": restored.database}
    )

    assert again.exit_code == 0, again.output
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(50)}
    counts = campaign_rows.state_counts(store, 1)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (40, 10, 0)
    store.close()


def test_a_backup_from_an_older_schema_is_migrated_forward(
    config: Config, pair: tuple[str, str], secret: str, tmp_path: Path
) -> None:
    # What a program at schema version 3 (before link keys) wrote: its tables as they were.
    source, target = pair
    engine = make_engine(source)
    upgrade(engine, MIGRATIONS[:3])
    with engine.begin() as connection:
        connection.execute(
            insert(subscribers_before_4),
            [
                {"id": n, "email": f"old{n}@example.org", "email_key": f"old{n}@example.org",
                 "name": "", "status": "active", "attributes": {}, "created_at": WHEN,
                 "updated_at": WHEN, "source": "cli", "opt_in_at": WHEN}
                for n in (1, 2, 5)
            ],
        )  # fmt: skip
    version_3 = {"subscribers": subscribers_before_4, "ledger": ledger_before_14}
    names = {"schema_version", "subscribers", "subscriber_topics", "subscriber_events",
             "suppressions", "campaigns", "ledger", "webhook_events", "rate_limits",
             "campaign_engagement"}  # fmt: skip
    shapes = [
        shape_of(version_3.get(table.name, table))
        for table in schema_tables()
        if table.name in names
    ]
    with snapshot(engine) as connection, BackupWriter(tmp_path / "old.backup") as writer:
        assert recorded_version(connection) == 3
        for shape in shapes:
            writer.table(shape, encoded_pages(connection, shape))
        writer.finish(schema_version=3, last_ids=last_ids(connection, shapes), engine="sqlite")
    engine.dispose()

    loaded = restore_database(at(config, target), tmp_path / "old.backup")

    assert (loaded.schema_version, loaded.migrated_to) == (3, MIGRATIONS[-1].version)
    store = open_store_url(target, config.topic_ids)
    old_link = URLSafeSerializer(secret, salt="newsletter.unsubscribe").dumps([5, None])
    claim = Signer(secret).read_unsubscribe_token(old_link)
    holder = store.holder(claim.subscriber_id, claim.link_key)
    assert holder is not None and holder.email == "old5@example.org"  # legacy link honoured
    assert store.add("new@example.org", source="cli").id == 6
    with store.engine.connect() as connection:
        versions = connection.scalars(
            select(schema_version_table.c.version).order_by(schema_version_table.c.version)
        ).all()
    assert versions == [migration.version for migration in MIGRATIONS]
    store.close()
