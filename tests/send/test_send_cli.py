"""``newsletter send`` and ``newsletter status`` on the embedded defaults (the outbox)."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.lease import Lease
from newsletter.send.provider_events import EventProcessor
from newsletter.store import Store
from newsletter.tokens import DEVELOPMENT_SECRET, Signer
from newsletter.web.webhooks import read_events
from tests.send.arrivals import check_copies
from tests.send.conftest import SEED


def outbox_messages(project: Path) -> list[EmailMessage]:
    folder = mailbox.Maildir(project / "outbox", factory=None, create=False)
    # Iterating a mailbox gives its messages; iterkeys() gives the keys.
    raw = [folder.get_bytes(key) for key in folder.iterkeys()]
    return [message_from_bytes(data, policy=policy.default) for data in raw]  # type: ignore[misc]


def body_of(message: EmailMessage, part: str) -> str:
    """The ``"html"`` or ``"plain"`` part of a message, decoded."""
    body = message.get_body((part,))
    assert body is not None, f"no {part} part"
    return str(body.get_content())


def start_seed_campaign(store: Store) -> campaign_rows.Campaign:
    """The seed issue's campaign, started (snapshot taken) but not yet sent."""
    return campaign_rows.start_campaign(
        store, slug="stem-cells-in-breast-milk", issue_path=SEED, subject="Stem Cells",
        topics=["research"], provider="outbox",
    )  # fmt: skip


def test_send_shows_the_plan_sends_and_summarises(
    runner: CliRunner,
    project: Path,
    subscribers: Callable[..., list[int]],
    store: Store,
) -> None:
    ids = subscribers(3)
    store.add("stories@example.org", topics=["stories"])  # not a recipient of this issue
    store.add("gone@example.org", topics=["research"])
    store.unsubscribe(store.find("gone@example.org").id, source="cli")

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:7] == [
        f"Issue:      Stem Cells: The Medicine in Breast Milk? ({SEED})",
        "Subject:    Stem Cells: The Medicine in Breast Milk?",
        "Provider:   outbox",
        "Audience:   3 of 4 active subscriber(s): those with the topic research",
        "Left out:   1 active subscriber(s) without the topic research; 1 with it who "
        "unsubscribed, bounced or complained",
        "To send:    3",
        "Checks:     ok",
    ]
    assert lines[-2].startswith("Sent 3, failed 0, skipped 0, deferred 0, unknown 0 in ")
    assert lines[-1] == (
        "Campaign 1: 0 pending, 0 in flight, 3 sent, 0 failed, 0 unknown, 0 skipped."
    )
    # The outbox signs with the development key when no secret is set: the demo runs.
    check_copies(
        outbox_messages(project), Signer(DEVELOPMENT_SECRET), campaign_id=1, subscriber_ids=ids
    )


def test_sending_again_sends_nothing_twice(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(3)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    subscribers(2, start=3)  # joined after the campaign: not part of it

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "Nothing to send: campaign 1 has no one left to send to."
    )
    assert len(outbox_messages(project)) == 3


def test_send_asks_before_sending(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(2)

    result = runner.invoke(cli, ["send", SEED], input="n\n")

    assert result.exit_code == 1
    assert "Send to 2 recipient(s) through outbox? [y/N]: n" in result.output
    assert result.output.splitlines()[-1] == "Aborted!"
    assert not (project / "outbox").exists()


def test_dry_run_builds_every_message_and_records_nothing(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(4)
    store.add("imported@example.org")  # no topics: not in a research issue's audience

    result = runner.invoke(cli, ["send", SEED, "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "Left out:   1 active subscriber(s) without the topic research\n" in result.output
    assert "Would send 4, failed 0" in result.output
    assert "Dry run: nothing was handed over and nothing was recorded." in result.output
    assert not (project / "outbox").exists()
    assert campaign_rows.list_campaigns(store) == []


def test_dry_run_of_a_started_campaign_counts_who_is_left_and_changes_nothing(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    ids = subscribers(4)
    campaign = start_seed_campaign(store)
    store.unsubscribe(ids[1], source="web")

    result = runner.invoke(cli, ["send", SEED, "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "Would send 3, failed 0" in result.output
    assert campaign_rows.state_counts(store, campaign.id)["pending"] == 4  # nothing marked
    assert not (project / "outbox").exists()


def test_test_sends_go_to_any_address_with_a_test_subject_and_are_not_recorded(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(2)

    result = runner.invoke(
        cli, ["send", SEED, "--test", "editor@example.org", "--test", "proof@example.net"]
    )

    assert result.exit_code == 0, result.output
    assert "Test to editor@example.org: sent" in result.output
    messages = outbox_messages(project)
    assert sorted(str(m["To"]) for m in messages) == [
        "editor@example.org",
        "proof@example.net",
    ]
    # Addressed to the proof address, not a made-up reader; the samples are labelled.
    assert all("Hi there," in m.get_body(("plain",)).get_content() for m in messages)
    assert all("links are samples" in m["X-Newsletter-Test"] for m in messages)
    assert {m["Subject"] for m in messages} == {"[TEST] Stem Cells: The Medicine in Breast Milk?"}
    assert campaign_rows.list_campaigns(store) == []


def test_someone_who_unsubscribes_after_the_start_is_skipped(
    runner: CliRunner,
    configure: Callable[..., Config],
    project: Path,
    subscribers: Callable[..., list[int]],
    store: Store,
) -> None:
    configure(sending={"batch_size": 2})
    ids = subscribers(4)
    campaign = start_seed_campaign(store)
    store.unsubscribe(ids[3], source="web", campaign_id=campaign.id)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 3, failed 0, skipped 1" in result.output
    assert len(outbox_messages(project)) == 3
    assert campaign_rows.state_counts(store, campaign.id)["skipped"] == 1


def test_topics_choose_the_audience(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(2)
    subscribers(1, topics=("events",), start=2)

    result = runner.invoke(cli, ["send", SEED, "--yes", "--topic", "events"])

    assert result.exit_code == 0, result.output
    assert "Audience:   1 of 3 active subscriber(s): those with the topic events" in result.output
    assert [str(m["To"]) for m in outbox_messages(project)] == ["Reader 2 <reader2@example.org>"]

    result = runner.invoke(cli, ["send", SEED, "--yes", "--topic", "research"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: {SEED}: this issue's campaign started for topics events; a campaign keeps "
        "its recipients, so send it again without --topic to resume it"
    )


def test_the_plan_of_several_topics_or_none_says_who_each_number_counts(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(2)
    subscribers(1, topics=("events",), start=2)
    subscribers(1, topics=("research", "events"), start=3)
    store.add("none@example.org")  # no topics
    store.mark(store.add("gone@example.org", topics=["events"]).id, "bounced")

    result = runner.invoke(
        cli, ["send", SEED, "--dry-run", "--topic", "research", "--topic", "events"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3:5] == [
        "Audience:   4 of 5 active subscriber(s): those with any of the topics research (3), "
        "events (2)",
        "Left out:   1 active subscriber(s) with none of the topics research, events; "
        "1 with any of them who unsubscribed, bounced or complained",
    ]

    issue = project / SEED
    issue.write_text(issue.read_text().replace("topics: [research]", "topics: []"))
    result = runner.invoke(cli, ["send", SEED, "--dry-run"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[3:5] == [
        "Audience:   5 active subscriber(s): everyone (no topics)",
        "Left out:   1 unsubscribed, bounced or complained",
    ]


def test_an_unknown_topic_names_the_known_ones(
    runner: CliRunner, subscribers: Callable[..., list[int]]
) -> None:
    result = runner.invoke(cli, ["send", SEED, "--yes", "--topic", "gossip"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown topic 'gossip'")


def test_an_issue_with_check_errors_is_refused(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(1)
    issue = project / SEED
    issue.write_text(
        issue.read_text(encoding="utf-8") + "\n#### Skipped heading levels\n", encoding="utf-8"
    )

    result = runner.invoke(cli, ["send", SEED])

    assert result.exit_code == 1
    assert "Check:      " in result.output
    assert "Send to" not in result.output  # refused before asking
    assert result.output.splitlines()[-1] == (
        f"Error: {SEED}: the pre-send checks found 1 error(s); fix them (see "
        "'newsletter check') and send again"
    )
    assert not (project / "outbox").exists()


def test_a_second_sender_on_the_same_campaign_is_refused(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(2)
    campaign = start_seed_campaign(store)
    with Lease(store, campaign):  # another sender, alive, holds the campaign
        result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert "Error: campaign 'stem-cells-in-breast-milk' is being sent by process" in result.output
    assert "two senders would mail people twice, so this one stops" in result.output
    assert not (project / "outbox").exists()


def test_status_shows_each_campaign(
    runner: CliRunner, subscribers: Callable[..., list[int]]
) -> None:
    assert runner.invoke(cli, ["status"]).output == "No campaigns yet.\n"
    subscribers(2)
    runner.invoke(cli, ["send", SEED, "--yes"])

    result = runner.invoke(cli, ["status", SEED])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "stem-cells-in-breast-milk: campaign 1 via outbox, topics research"
    assert lines[1].startswith("  started ") and ", finished " in lines[1]
    assert (
        lines[2]
        == "  2 recipient(s): 0 pending, 0 in flight, 2 sent, 0 failed, 0 unknown, 0 skipped"
    )
    assert lines[3] == "  after it: 0 unsubscribed"  # no opens: tracking is off

    data = json.loads(runner.invoke(cli, ["status", "--json"]).output)
    assert data[0]["counts"]["sent"] == 2
    assert data[0]["slug"] == "stem-cells-in-breast-milk"


def test_status_shows_what_readers_did_after_the_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
) -> None:
    configure(sendgrid={"tracking": True})
    first, second, _ = subscribers(3)
    runner.invoke(cli, ["send", SEED, "--yes"])
    store.unsubscribe(first, source="one-click", campaign_id=1)
    store.unsubscribe(second, source="cli")  # not through this issue: not counted
    events = EventProcessor(store, tracked_by={"sendgrid"})
    events.apply(
        read_events(
            {"event": kind, "email": "reader2@example.org", "campaign_id": "1"}
            for kind in ("open", "open", "click")
        )
    )

    result = runner.invoke(cli, ["status"])

    assert "  after it: 1 unsubscribed, 2 opens, 1 click\n" in result.output
    data = json.loads(runner.invoke(cli, ["status", "--json"]).output)
    assert data[0]["reactions"] == {"unsubscribed": 1, "open": 2, "click": 1}
