"""A subject test's rest in the queue: ``newsletter schedule`` shows how many readers it
goes to (the campaign's readers not in its sample, who are still subscribed), not the
whole list as it is now; on SQLite and PostgreSQL, through the outbox with first-party tracking."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.schedule_queue import REST_NOTE
from newsletter.store import Store
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import variants_in_ledger, with_variants

pytestmark = pytest.mark.usefixtures("secret", "on_both")


@pytest.fixture
def on_both(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url


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
