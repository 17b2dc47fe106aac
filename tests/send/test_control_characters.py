"""Text that strangers send (a provider's webhook, a returned message, a remote SMTP
server's reply) is stored without control characters, so a report printed to a terminal
or opened as CSV never carries an escape sequence (issue 20, item 6): ESC recolours,
retitles or rewrites the editor's terminal, BEL rings it. The visible text stays.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.provider_events import EventProcessor
from newsletter.send.webhook_event import provider_event
from newsletter.store import Store
from newsletter.store.returns import Return, record_returns
from newsletter.store.statuses import StatusChange
from newsletter.web.webhooks import read_events
from tests.send.conftest import SEED

# Every C0 control but the line feed that ends a printed line, DEL and the C1 controls.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
HOSTILE_URL = "https://example.org/offer\x1b]0;you were hacked\x07?page=\x1b[2J2\x9b"
SHOWN_URL = "https://example.org/offer]0;you were hacked?page=[2J2"


def reasons(store: Store, email: str) -> list[str]:
    return [event["detail"].get("reason", "") for event in store.describe(email)["events"]]


def test_a_webhooks_click_url_and_reason_reach_the_report_and_csv_without_controls(
    runner: CliRunner,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
) -> None:
    configure(sendgrid={"tracking": True})
    _, _, complained = subscribers(3)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    tagged = {"campaign_id": "1"}
    events = EventProcessor(store, tracked_by={"sendgrid"})
    events.apply(
        read_events(
            [
                {"event": "click", "email": "reader0@example.org", "url": HOSTILE_URL, **tagged},
                {
                    "event": "bounce",
                    "type": "bounce",
                    "email": "reader1@example.org",
                    "reason": "550 5.1.1 \x1b[31mno such user\x07",
                    **tagged,
                },
            ]
        )
    )
    events.apply(
        [
            provider_event(
                "postmark",
                event_id="1",
                kind="delivered",
                email="reader2@example.org",
                tags={"subscriber_id": str(complained), **tagged},
                message_id=None,
                new_status="complained",
                reason="Spam\x1b[8m complaint\r\n\x00",
            )
        ]
    )

    table = runner.invoke(cli, ["report", SEED])
    exported = runner.invoke(cli, ["report", "--format", "csv"])

    assert table.exit_code == exported.exit_code == 0
    for output in (table.output, exported.output):
        assert not CONTROL.search(output), CONTROL.findall(output)
    assert f"       1  {SHOWN_URL}\n" in table.output
    [row] = csv.DictReader(io.StringIO(exported.output))
    assert row["top_links"] == f"1 {SHOWN_URL}"
    assert reasons(store, "reader1@example.org")[-1] == "550 5.1.1 [31mno such user"
    assert reasons(store, "reader2@example.org")[-1] == "Spam[8m complaint"


def test_a_returned_messages_reason_is_stored_without_controls(
    store: Store, subscribers: Callable[..., list[int]]
) -> None:
    reader, other = subscribers(2)

    record_returns(
        store,
        [Return("message-1", "hard_bounce", reader, None, "550 \x1b[2Juser unknown\x07")],
        soft_bounce_limit=3,
    )
    # What else reports a reason (an SMTP server's refusal) goes through the same rule.
    store.change_statuses([StatusChange(other, "bounced", "smtp", "550\x1b]2;x\x07 refused")])

    assert reasons(store, "reader0@example.org") == ["550 [2Juser unknown"]
    assert reasons(store, "reader1@example.org") == ["550]2;x refused"]


def test_a_subject_that_reads_as_a_formula_is_exported_as_text(
    runner: CliRunner, store: Store
) -> None:
    for number, subject in enumerate(['=HYPERLINK("https://evil.example")', "@SUM(1)", "+1", "-1"]):
        campaign_rows.start_campaign(
            store, slug=f"issue-{number}", issue_path=f"issue-{number}.md", subject=subject,
            topics=[], provider="outbox",
        )  # fmt: skip

    exported = runner.invoke(cli, ["report", "--format", "csv"])

    assert exported.exit_code == 0, exported.output
    subjects = [row["subject"] for row in csv.DictReader(io.StringIO(exported.output))]
    assert sorted(subjects) == sorted(
        ['\'=HYPERLINK("https://evil.example")', "'@SUM(1)", "'+1", "'-1"]
    )
