"""A message nobody can read in time never stops the return mailbox (issue 20): it is set
aside (``quarantine``), remembered, and every other message is applied."""

from __future__ import annotations

import json
import mailbox
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.send.mailbox.classify import Classified, classify
from newsletter.send.mailbox.guard import Limits, Reader
from newsletter.send.return_tokens import ReturnClaim, ReturnTokens
from newsletter.store import Store
from tests.mailbox import test_process
from tests.mailbox.conftest import Returned, link_keys
from tests.mailbox.hostile import big_report, dashes_report, nested_messages, nested_multiparts
from tests.mailbox.test_process import deliver, sent_campaign

db, maildir = test_process.db, test_process.maildir  # the fixtures of the same suite

LIMITS = Limits(max_bytes=5_000_000, seconds=2.0)


def read(message: bytes, tokens: ReturnTokens) -> Classified:
    with Reader(tokens, LIMITS) as reader:
        return reader.classify(message, len(message), link_keys)


def configure(project: Path, **mailbox: object) -> None:
    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["mailbox"].update(mailbox)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def test_deep_and_slow_messages_are_set_aside_and_the_rest_applied(
    db: Store, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    leaving = db.add("reader0@example.net", topics=["research"])
    gone = db.add("reader1@example.net", topics=["research"])
    campaign = sent_campaign(db, "stem-cells")
    deliver(maildir, "a", nested_messages(3000))
    deliver(maildir, "b", nested_multiparts(2000))
    deliver(maildir, "c", dashes_report(16_000))
    deliver(maildir, "d", returned("mailto-unsubscribe", leaving, campaign.id))
    deliver(maildir, "e", returned("postfix-user-unknown", gone, campaign.id))

    started = time.process_time()
    result = runner.invoke(cli, ["mailbox", "process", "--json"])
    elapsed = time.process_time() - started

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["messages"]["quarantine"] == 2
    assert summary["messages"]["unsubscribe"] == 1
    assert summary["messages"]["hard_bounce"] == 1
    assert summary["messages"]["other"] == 1  # the dashes: read, in linear time
    assert [item["reason"] for item in summary["quarantined"]] == [
        "more than 64 nested multipart or message parts",
        "more than 64 nested multipart or message parts",
    ]
    assert elapsed < 10  # was a RecursionError on every run; 29 s for the dashes alone
    assert db.get(leaving.id).status == "unsubscribed"  # type: ignore[union-attr]
    assert db.get(gone.id).status == "bounced"  # type: ignore[union-attr]
    # Left in the mailbox, flagged for a person, unseen.
    moved = sorted(path.name.removeprefix("1796000000.") for path in (maildir / "cur").iterdir())
    assert moved == ["a.mx:2,F", "b.mx:2,F", "c.mx:2,", "d.mx:2,S", "e.mx:2,S"]

    # Put back (a restored copy): recorded, so not read again.
    for path in (maildir / "cur").iterdir():
        path.rename(maildir / "new" / path.name.split(":")[0])
    again = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)
    assert again["already_processed"] == 5
    assert again["messages"]["quarantine"] == 0


def test_a_quarantine_folder_gets_what_is_set_aside(
    db: Store, project: Path, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    configure(project, quarantine_folder="Quarantine", max_message_size=100_000)
    leaving = db.add("reader0@example.net", topics=["research"])
    deliver(maildir, "a", nested_messages(3000))
    deliver(maildir, "b", b"Subject: big\r\nMessage-ID: <big@example.com>\r\n\r\n" + b"x" * 200_000)
    deliver(maildir, "c", returned("mailto-unsubscribe", leaving))

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Set aside (quarantine): 2, moved to Quarantine" in lines
    assert "  1796000000.a.mx: more than 64 nested multipart or message parts" in lines
    assert "  1796000000.b.mx: larger than mailbox.max_message_size (100,000 bytes)" in lines
    quarantine = maildir / ".Quarantine"
    assert sorted(path.name for path in (quarantine / "cur").iterdir()) == [
        "1796000000.a.mx:2,F",
        "1796000000.b.mx:2,F",
    ]
    assert sorted(path.name for path in (maildir / "cur").iterdir()) == ["1796000000.c.mx:2,S"]
    assert db.get(leaving.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_a_message_past_the_time_budget_is_set_aside(
    db: Store, project: Path, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    configure(project, message_timeout=0.05)  # CPU seconds: the same on a busy machine
    leaving = db.add("reader0@example.net", topics=["research"])
    # 4.5 MB of lines: half a second of parsing, a tenth of that allowed.
    lines = b"".join(b"line %d of a long message\r\n" % n for n in range(150_000))
    slow = b"Subject: slow\r\nMessage-ID: <slow@example.com>\r\n\r\n" + lines
    deliver(maildir, "a", slow)
    deliver(maildir, "b", returned("mailto-unsubscribe", leaving))

    summary = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)

    assert summary["quarantined"] == [
        {"message": "1796000000.a.mx", "reason": "not read within mailbox.message_timeout (0.05 s)"}
    ]
    assert summary["messages"]["unsubscribe"] == 1


@pytest.mark.parametrize(
    "message",
    [nested_messages(3000), nested_multiparts(2000)],
    ids=["messages", "multiparts"],
)
def test_a_deep_message_is_set_aside_in_well_under_a_second(
    tokens: ReturnTokens, message: bytes
) -> None:
    started = time.process_time()
    result = read(message, tokens)

    assert time.process_time() - started < 1
    assert result.kind == "quarantine"


def test_nesting_a_real_bounce_needs_is_read(returned: Returned, tokens: ReturnTokens) -> None:
    message = nested_messages(30)

    assert read(message, tokens).kind == "other"


def test_boundary_lookalikes_are_read_in_linear_time(tokens: ReturnTokens) -> None:
    small, large = dashes_report(2_000), dashes_report(32_000)

    timings = []
    for message in (small, large):
        started = time.process_time()
        assert classify(message, tokens, link_keys).kind == "other"
        timings.append(time.process_time() - started)

    # 16 times the lines: about 16 times the time (quadratic would be 256 times).
    assert timings[1] < max(0.5, 40 * timings[0])


def test_a_one_megabyte_report_is_classified_in_under_a_second(
    returned: Returned, tokens: ReturnTokens
) -> None:
    message = big_report(1_000_000, returned("postfix-user-unknown", 42, 7))
    assert len(message) > 1_000_000

    started = time.process_time()
    result = read(message, tokens)

    assert time.process_time() - started < 1
    assert (result.kind, result.claim) == ("hard_bounce", ReturnClaim(42, 7))


def test_an_mbox_is_read_within_bounds_and_not_changed(
    db: Store, project: Path, maildir: Path, runner: CliRunner, returned: Returned
) -> None:
    configure(project, url="mbox:returns.mbox")
    leaving = db.add("reader0@example.net", topics=["research"])
    gone = db.add("reader1@example.net", topics=["research"])
    campaign = sent_campaign(db, "stem-cells")
    box = mailbox.mbox(project / "returns.mbox")
    for message in (
        nested_messages(3000),
        returned("mailto-unsubscribe", leaving, campaign.id),
        returned("postfix-user-unknown", gone, campaign.id),
    ):
        box.add(message.replace(b"\r\n", b"\n"))  # as a local MTA writes it
    box.close()
    written = (project / "returns.mbox").read_bytes()

    first = runner.invoke(cli, ["mailbox", "process", "--json"])
    second = json.loads(runner.invoke(cli, ["mailbox", "process", "--json"]).output)

    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["source"] == f"mbox:{project / 'returns.mbox'}"
    assert summary["quarantined"] == [
        {"message": "message 1", "reason": "more than 64 nested multipart or message parts"}
    ]
    assert (summary["messages"]["unsubscribe"], summary["messages"]["hard_bounce"]) == (1, 1)
    assert db.get(leaving.id).status == "unsubscribed"  # type: ignore[union-attr]
    assert db.get(gone.id).status == "bounced"  # type: ignore[union-attr]
    # Read only; the database knows all three the next time.
    assert (project / "returns.mbox").read_bytes() == written
    assert (sum(second["messages"].values()), second["already_processed"]) == (0, 3)
