"""``schedule cancel`` of a scheduled send that is running (issue 20, item 4).

A real ``newsletter run-due`` sends the seed issue through the outbox at a slow pace;
once its first batch is out, ``schedule cancel`` takes it off the schedule. The
sender stops before its next batch and says so, the rest stay ``pending``, the
cancel tells the truth about it, and a later ``newsletter send`` mails everyone else,
each exactly once. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule_queue import list_schedule, schedule_issue
from newsletter.store import Store
from newsletter.store.schema import ledger
from tests.send.conftest import SEED
from tests.send.test_wait_before_hand_over import Sender, add_readers, outbox_received

pytestmark = pytest.mark.slow

READERS = 100


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def schedule_now(config: Config, project: Path) -> None:
    """Queue the seed issue, due a second ago (scheduled the day before)."""
    due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    plan = plan_send(config, project / SEED)
    schedule_issue(config, plan, due, zone="UTC", clock=lambda: due - dt.timedelta(days=1))


def test_cancel_stops_a_running_scheduled_send_before_its_next_batch(
    project: Path,
    configure: Callable[..., Config],
    shared_store: Store,
    runner: CliRunner,
) -> None:
    config = configure(provider="outbox", sending={"batch_size": 10, "rate": 10})
    add_readers(shared_store, READERS)
    schedule_now(config, project)
    sender = Sender.command(project, "run-due")
    wait_until(lambda: sum(outbox_received(config.outbox_dir).values()) >= 10)

    cancelled = runner.invoke(cli, ["schedule", "cancel", SEED])

    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.startswith("Cancelled: stem-cells-in-breast-milk (was due ")
    assert "Its campaign 1 is being sent right now by process " in cancelled.output
    assert "it stops before its next batch and says so" in cancelled.output
    assert sender.finish() == 0, sender.output
    assert "stopped: its schedule was cancelled" in sender.output
    counts = campaign_rows.state_counts(shared_store, 1)
    arrived = outbox_received(config.outbox_dir)
    assert set(arrived.values()) == {1}
    assert counts["sent"] == len(arrived) < READERS
    assert (counts["in_flight"], counts["unknown"]) == (0, 0)
    assert counts["pending"] == READERS - len(arrived)  # the rest, untouched
    assert list_schedule(config) == []  # run-due will not pick it up again

    again = runner.invoke(cli, ["schedule", "cancel", SEED])
    assert again.exit_code == 1
    assert "nothing scheduled for it" in again.output

    resumed = Sender(project, "--rate", "1000")
    assert resumed.finish() == 0, resumed.output
    assert outbox_received(config.outbox_dir) == Counter(
        {f"reader{n}@example.org": 1 for n in range(READERS)}
    )
    assert campaign_rows.state_counts(shared_store, 1)["sent"] == READERS


def test_cancel_of_a_started_send_that_is_not_running_says_what_stays_pending(
    project: Path,
    configure: Callable[..., Config],
    shared_store: Store,
    runner: CliRunner,
) -> None:
    config = configure(provider="outbox", sending={"batch_size": 10, "rate": 10})
    # As many readers as above (some 9 s of sending after the first batch), so that the
    # run is still going when it is killed, however late a loaded machine polls.
    add_readers(shared_store, READERS)
    schedule_now(config, project)
    sender = Sender.command(project, "run-due")
    wait_until(lambda: sum(outbox_received(config.outbox_dir).values()) >= 10)
    sender.kill()  # the run stopped (here: killed) with its campaign half sent
    counts = campaign_rows.state_counts(shared_store, 1)

    cancelled = runner.invoke(cli, ["schedule", "cancel", SEED])

    assert cancelled.exit_code == 0, cancelled.output
    said = cancelled.output.splitlines()[1]
    assert said.startswith(f"Its campaign 1 had started: {counts['sent']} handed over, ")
    assert said.endswith(
        f"{counts['pending']} pending, who stay pending. 'newsletter send {SEED}' resumes it."
    )
    assert counts["pending"] > 0


def test_cancel_says_handed_over_as_the_report_does_and_names_failed_and_unknown(
    project: Path,
    configure: Callable[..., Config],
    shared_store: Store,
    runner: CliRunner,
) -> None:
    """A started send, not running, with copies in every state: the cancel's "handed
    over" is the report's (the ledger's ``sent``), and the copy the provider refused
    and the ones whose fate is unknown are said by their own names."""
    config = configure(provider="outbox")
    readers = add_readers(shared_store, 7)
    schedule_now(config, project)
    campaign = campaign_rows.start_campaign(
        shared_store,
        slug="stem-cells-in-breast-milk",
        issue_path=str(project / SEED),
        subject="Stem cells in breast milk",
        topics=["research"],
        provider="outbox",
    )
    fates = ["sent", "sent", "sent", "failed", "unknown", "in_flight", "pending"]
    with shared_store.engine.begin() as connection:
        for reader, fate in zip(readers, fates, strict=True):
            connection.execute(
                update(ledger)
                .where(ledger.c.campaign_id == campaign.id, ledger.c.subscriber_id == reader)
                .values(state=fate, attempts=0 if fate == "pending" else 1)
            )

    cancelled = runner.invoke(cli, ["schedule", "cancel", SEED])
    reported = runner.invoke(cli, ["report", "--format", "json"])

    assert cancelled.exit_code == 0, cancelled.output
    assert reported.exit_code == 0, reported.output
    (issue,) = json.loads(reported.output)["issues"]
    assert (issue["handed_over"], issue["failed"], issue["unknown"]) == (3, 1, 2)
    assert cancelled.output.splitlines()[1] == (
        "Its campaign 1 had started: 3 handed over, 1 failed, 2 unknown (may have been "
        f"handed over), 1 pending, who stay pending. 'newsletter send {SEED}' resumes it."
    )
