"""``newsletter mailbox process`` on a Maildir: bounces, complaints and mailto
unsubscribes change the store and the ledger once, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import delete, update

from newsletter.cli import cli
from newsletter.send import campaign_rows
from newsletter.send.return_tokens import ReturnTokens
from newsletter.store import Store, open_store_url
from newsletter.store.automation_tables import automation_entries
from newsletter.store.schema import ledger as ledger_table
from newsletter.store.schema import subscribers
from tests.mailbox.conftest import Returned

TOPICS = ["research", "stories", "events"]


@pytest.fixture
def db(database_url: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    store = open_store_url(database_url, TOPICS)
    yield store
    store.close()


@pytest.fixture
def maildir(project: Path) -> Path:
    folder = project / "returns"
    for part in ("new", "cur", "tmp"):
        (folder / part).mkdir(parents=True)
    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["bounces"] = {"address": "bounces@breastfeedingworld.example", "soft_bounce_limit": 2}
    data["mailbox"] = {"url": "maildir:returns"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def deliver(maildir: Path, name: str, message: bytes) -> None:
    (maildir / "new" / f"1796000000.{name}.mx").write_bytes(message)


def sent_campaign(store: Store, slug: str) -> campaign_rows.Campaign:
    campaign = campaign_rows.start_campaign(
        store, slug=slug, issue_path=f"issues/{slug}.md", subject=slug, topics=[],
        provider="smtp",
    )  # fmt: skip
    with store.engine.begin() as connection:
        connection.execute(
            update(ledger_table)
            .where(ledger_table.c.campaign_id == campaign.id)
            .values(state="sent", attempts=1)
        )
    return campaign


def test_bounces_complaints_and_mailto_unsubscribes_are_applied_once(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    readers = [db.add(f"reader{n}@example.net", topics=["research"]) for n in range(7)]
    ids = [reader.id for reader in readers]
    campaign = sent_campaign(db, "stem-cells")
    gone, full, angry, leaving, away, asking, moved = readers
    deliver(maildir, "a", returned("postfix-user-unknown", gone, campaign.id))
    deliver(maildir, "b", returned("postfix-delayed", full, campaign.id))
    deliver(maildir, "c", returned("microsoft-jmrp-complaint", angry, campaign.id))
    deliver(maildir, "d", returned("mailto-unsubscribe", leaving, campaign.id))
    deliver(maildir, "e", returned("out-of-office", away, campaign.id))
    deliver(maildir, "f", returned("question", asking, campaign.id))
    deliver(maildir, "h", returned("exim-failed", moved, campaign.id))
    forged = returned("mailto-unsubscribe", asking, campaign.id).replace(b"unsubscribe ", b"x")
    deliver(
        maildir, "g", forged.replace(b"Subject: x", b"Subject: unsubscribe 1-1-aaaaaaaaaaaaaaaa")
    )

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "Hard bounces: 2 (2 ledger row(s) failed)",
        "Soft bounces: 1",
        "Blocked (policy, not the address; nobody suppressed): 0 (0 ledger row(s) failed)",
        "Subscribers marked bounced: 2 (hard bounces, and soft ones at bounces.soft_bounce_limit)",
        "Complaints: 1 (1 subscriber(s) marked complained)",
        "Unsubscribes by mail: 1 (1 subscriber(s) unsubscribed)",
        "Without a valid token, ignored: 1",
        "Auto-replies, left alone: 1",
        "Other messages, left alone: 1",
        "Set aside (quarantine): 0, left in the mailbox, flagged",
        "Already processed by an earlier run: 0",
    ]
    statuses = [db.get(subscriber_id).status for subscriber_id in ids]
    assert statuses == [
        "bounced", "active", "complained", "unsubscribed", "active", "active", "bounced",
    ]  # fmt: skip
    assert db.describe("reader3@example.net")["unsubscribe_campaign_id"] == campaign.id
    assert campaign_rows.state_counts(db, campaign.id)["failed"] == 2
    # Acted on: flagged seen; left alone: moved out of new/ but unseen, for a person.
    assert not list((maildir / "new").iterdir())
    moved = sorted(path.name.removeprefix("1796000000.") for path in (maildir / "cur").iterdir())
    assert moved == [
        "a.mx:2,S", "b.mx:2,S", "c.mx:2,S", "d.mx:2,S", "e.mx:2,", "f.mx:2,", "g.mx:2,",
        "h.mx:2,S",
    ]  # fmt: skip

    # The same messages again (a copy restored, a POP3 box that cannot flag): no change.
    for path in (maildir / "cur").iterdir():
        path.rename(maildir / "new" / path.name.split(":")[0])
    again = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert summary["already_processed"] == 8
    assert summary["messages"] == dict.fromkeys(summary["messages"], 0)
    assert summary["subscribers"] == {"bounced": 0, "complained": 0, "unsubscribed": 0}
    assert [db.get(subscriber_id).status for subscriber_id in ids] == statuses


def test_a_bounce_never_downgrades_a_complaint_in_the_same_chunk_as_a_bounce_that_counts(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    active = db.add("reader0@example.net", topics=["research"])
    angry = db.add("reader1@example.net", topics=["research"])
    db.unsubscribe(angry.id, source="web")  # unsubscribed, then complained anyway
    db.mark(angry.id, "complained", reason="abuse report")
    campaign = sent_campaign(db, "stem-cells")
    deliver(maildir, "a", returned("postfix-user-unknown", active, campaign.id))
    deliver(maildir, "b", returned("gmail-no-such-user", angry, campaign.id))
    deliver(maildir, "c", returned("mailto-unsubscribe", angry, campaign.id))

    result = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["subscribers"] == {
        "bounced": 1,
        "complained": 0,
        "unsubscribed": 0,
    }
    assert db.get(active.id).status == "bounced"  # type: ignore[union-attr]
    record = db.describe("reader1@example.net")
    assert record["status"] == "complained"
    assert [event["event"] for event in record["events"]] == ["unsubscribed", "complained"]
    assert record["unsubscribe_source"] == "web"


def test_a_policy_block_fails_that_copy_and_suppresses_nobody(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    blocked = db.add("reader0@example.net", topics=["research"])
    gone = db.add("reader1@example.net", topics=["research"])
    campaign = sent_campaign(db, "stem-cells")
    deliver(maildir, "a", returned("gmail-policy-block", blocked, campaign.id))
    deliver(maildir, "b", returned("gmail-no-such-user", gone, campaign.id))

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "Blocked (policy, not the address; nobody suppressed): 1 (1 ledger row(s) failed)" in lines
    )
    assert "Hard bounces: 1 (1 ledger row(s) failed)" in lines
    assert db.get(blocked.id).status == "active"  # type: ignore[union-attr]
    assert db.get(gone.id).status == "bounced"  # type: ignore[union-attr]
    status = runner.invoke(cli, ["status", "stem-cells"]).output
    assert (
        "  blocked: 1 copy(ies) refused for the content or the sender (policy), not the "
        "address; nobody suppressed (docs/deliverability.md)"
    ) in status.splitlines()
    assert json.loads(runner.invoke(cli, ["status", "--json"]).output)[0]["blocked"] == 1
    report = json.loads(runner.invoke(cli, ["report", "--format", "json"]).output)
    assert {key: report["issues"][0][key] for key in ("blocked", "bounced_hard", "failed")} == {
        "blocked": 1,
        "bounced_hard": 1,
        "failed": 2,
    }
    # The copy was not delivered: --retry-failed sends it again, once the block is fixed.
    assert campaign_rows.state_counts(db, campaign.id)["failed"] == 2


def test_soft_bounces_from_enough_campaigns_mark_the_subscriber_bounced(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    subscriber = db.add("reader0@example.net", topics=["research"])
    reader = subscriber.id
    first, second = sent_campaign(db, "first"), sent_campaign(db, "second")
    # An MTA repeats its "still trying" notice: one campaign still counts once.
    deliver(maildir, "a", returned("postfix-delayed", subscriber, first.id))
    deliver(maildir, "b", returned("postfix-delayed", subscriber, first.id))
    assert runner.invoke(cli, ["mailbox", "process"]).exit_code == 0
    assert db.get(reader).status == "active"

    deliver(maildir, "c", returned("gmail-over-quota", subscriber, second.id))
    result = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert json.loads(result.output)["subscribers"]["bounced"] == 1
    assert db.get(reader).status == "bounced"
    # A soft bounce is no proof the copy was lost: the ledger keeps it as sent.
    assert campaign_rows.state_counts(db, second.id)["sent"] == 1


def test_returns_for_an_erased_subscriber_never_reach_whoever_has_their_id_now(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    erased = db.add("erased@example.net", topics=["research"])
    db.forget("erased@example.net")
    newcomer = db.add("newcomer@example.net")  # no topics yet: rows that would pin its id
    # What an id reused by the database would look like (tests/web/test_link_binding.py);
    # its automation entry (made on adding) would pin the id, and is not what is tested.
    with db.engine.begin() as connection:
        connection.execute(
            delete(automation_entries).where(automation_entries.c.subscriber_id == newcomer.id)
        )
        connection.execute(
            update(subscribers).where(subscribers.c.id == newcomer.id).values(id=erased.id)
        )
    other = db.add("other@example.net", topics=["research"])
    campaign = sent_campaign(db, "stem-cells")  # the newcomer's copy, under the old id
    deliver(maildir, "a", returned("postfix-user-unknown", erased, campaign.id))
    deliver(maildir, "b", returned("microsoft-jmrp-complaint", erased, campaign.id))
    deliver(maildir, "c", returned("mailto-unsubscribe", erased, campaign.id))
    # The newcomer's id in a token that someone else was given: the MAC no longer fits.
    altered = returned("mailto-unsubscribe", other, campaign.id).replace(
        f" {other.id}-".encode(), f" {erased.id}-".encode()
    )
    deliver(maildir, "d", altered)

    result = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["messages"]["unverified"] == 4
    assert summary["subscribers"] == {"bounced": 0, "complained": 0, "unsubscribed": 0}
    assert db.describe("newcomer@example.net")["status"] == "active"
    assert db.describe("other@example.net")["status"] == "active"
    assert campaign_rows.state_counts(db, campaign.id)["sent"] == 2


def test_a_mailto_subject_a_mail_client_encoded_in_base64_still_unsubscribes(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned, tokens: ReturnTokens
) -> None:
    reader = db.add("reader0@example.net", topics=["research"])
    subject = tokens.mailto_subject(reader.id, reader.link_key, None)
    encoded = f"=?utf-8?b?{base64.b64encode(subject.encode()).decode()}?="
    message = returned("mailto-unsubscribe", reader).replace(subject.encode(), encoded.encode())
    deliver(maildir, "a", message)

    result = runner.invoke(cli, ["mailbox", "process", "--json"])

    assert json.loads(result.output)["subscribers"]["unsubscribed"] == 1
    assert db.describe("reader0@example.net")["status"] == "unsubscribed"


def test_without_a_mailbox_configured_the_error_says_which_key_to_set(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "a-long-enough-secret-key-for-this-test-0123")

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 1
    assert result.output == (
        "Error: mailbox.url is not set in newsletter.yaml; set it to where bounces arrive "
        "(imaps://user@host/INBOX, pop3s://user@host, maildir:PATH or mbox:PATH)\n"
    )
