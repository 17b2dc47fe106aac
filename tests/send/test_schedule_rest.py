"""A subject test's rest in the queue: ``newsletter schedule`` shows how many readers it
goes to (the campaign's readers not in its sample, who are still subscribed), not the
whole list as it is now; on SQLite and PostgreSQL, through the outbox with first-party tracking."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule import run_due
from newsletter.send.schedule_queue import REST_NOTE, list_schedule, schedule_issue, schedule_rest
from newsletter.send.schedule_times import issue_hash
from newsletter.store import Store
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import variants_in_ledger, with_variants

pytestmark = pytest.mark.usefixtures("secret", "on_both")


@pytest.fixture
def measured(configure: Callable[..., Config]) -> Config:
    return configure(
        timezone="UTC",
        tracking={"clicks": True, "per_subscriber": True},  # the outbox, measured
        ab={"sample": "20%", "wait": "4h"},
    )


def test_schedule_shows_the_rest_of_a_subject_test_as_the_readers_it_goes_to(
    measured: Config,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    with_variants(project)
    subscribers(50)
    sample = runner.invoke(cli, ["send", SEED, "--yes"])
    assert sample.exit_code == 0, sample.output
    assert "Rest:       40 reader(s) get the winner at " in sample.output
    # Who subscribes after the campaign started is not in it, so not in its rest; who
    # leaves before the rest goes is skipped when it goes.
    subscribers(5, start=50)
    [campaign] = campaign_rows.list_campaigns(store)
    rest = [s for s, variant in variants_in_ledger(store, campaign.id).items() if variant is None]
    store.unsubscribe(rest[0], source="web", campaign_id=campaign.id)

    listed = runner.invoke(cli, ["schedule"])

    assert listed.exit_code == 0, listed.output
    header, row, note = listed.output.splitlines()
    assert header.split() == ["ISSUE", "WHEN", "AUDIENCE", "PROVIDER", "STATE"]
    assert row.split()[0] == "stem-cells-in-breast-milk"
    assert row.split()[-3:] == ["39", "outbox", "queued"]
    assert note == f"stem-cells-in-breast-milk: {REST_NOTE}"
    [entry] = json.loads(runner.invoke(cli, ["schedule", "--json"]).output)
    assert entry["audience"] == 39


def test_the_rest_is_queued_as_an_issue_is_with_its_own_time_and_note(
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    project: Path,
) -> None:
    """Both entries are written by one rule: what run-due re-plans the rest from (the file,
    its hash, the provider, the topics) is what ``send --at`` records for an issue."""
    config = configure(timezone="Europe/Berlin")
    subscribers(3)
    plan = plan_send(config, project / SEED, topics=["research"])
    at = dt.datetime(2099, 12, 1, 8, 0, tzinfo=dt.UTC)
    schedule_issue(config, plan, at, zone="America/New_York")
    [scheduled] = (entry.as_dict() for entry in list_schedule(config))

    rest = schedule_rest(config, plan, at + dt.timedelta(hours=4))

    [queued] = (entry.as_dict() for entry in list_schedule(config))
    assert queued == scheduled | {
        "send_at": "2099-12-01T12:00:00+00:00",
        "local_time": "2099-12-01T13:00:00+01:00",  # in the newsletter's own zone
        "timezone": "Europe/Berlin",
        "note": REST_NOTE,
    }
    assert (rest.state, rest.issue_hash) == ("queued", issue_hash(project / SEED))
    # Nothing is taken for a change of the file when it goes.
    said: list[str] = []
    [due] = run_due(config, clock=lambda: at + dt.timedelta(hours=4), say=said.append)
    assert due.outcome == "sent", due.message
    assert not any("changed after it was scheduled" in line for line in said)
