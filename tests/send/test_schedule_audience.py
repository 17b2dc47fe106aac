"""What ``newsletter schedule`` counts for an entry: an issue not started yet, the readers
``send`` would plan it for (its front matter's ``segment:`` included); an issue sent, how
many its campaign handed over. On SQLite and PostgreSQL, through the outbox."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send.schedule import run_due
from newsletter.store import Store
from tests.send.conftest import SEED

pytestmark = pytest.mark.usefixtures("secret", "on_both")

UK = 'attributes.country == "GB"'


@pytest.fixture
def on_both(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url


def listed(runner: CliRunner, *options: str) -> tuple[list[str], list[int | None]]:
    """The AUDIENCE column of ``schedule`` and the audiences of ``schedule --json``."""
    table = runner.invoke(cli, ["schedule", *options])
    assert table.exit_code == 0, table.output
    header, *rows = table.output.splitlines()
    column = header.index("AUDIENCE")
    entries = json.loads(runner.invoke(cli, ["schedule", *options, "--json"]).output)
    # One row an entry, then the notes.
    audiences = [row[column:].split()[0] for row in rows[: len(entries)]]
    return audiences, [entry["audience"] for entry in entries]


def test_a_segmented_issue_is_listed_with_its_segments_readers(
    configure: Callable[..., Config], store: Store, runner: CliRunner, project: Path
) -> None:
    configure(timezone="UTC", segments={"uk": UK})
    for n, country in enumerate(["GB", "GB", "FR", "FR", "FR"]):
        store.add(f"reader{n}@example.org", topics=["research"], attributes={"country": country})
    issue = project / SEED
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "topics: [research]\n", "topics: [research]\nsegment: uk\n"
        ),
        encoding="utf-8",
    )

    scheduled = runner.invoke(cli, ["send", SEED, "--at", "2099-12-01 09:00", "--yes"])

    assert scheduled.exit_code == 0, scheduled.output
    assert "Audience:   2 of 5 active subscriber(s)" in scheduled.output
    assert listed(runner) == (["2"], [2])
    # As it stands now: a reader who joins the segment's country before it goes counts.
    store.add("late@example.org", topics=["research"], attributes={"country": "GB"})
    assert listed(runner) == (["3"], [3])
    # An issue that cannot be read now has no audience to count: run-due holds it.
    issue.write_text(issue.read_text(encoding="utf-8").replace("segment: uk", "segment: gb"))
    assert listed(runner) == (["?"], [None])


def test_a_sent_issue_is_listed_with_how_many_it_was_handed_over_to(
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    config = configure(timezone="UTC")
    first = subscribers(3)
    scheduled = runner.invoke(cli, ["send", SEED, "--at", "2099-12-01 09:00", "--yes"])
    assert scheduled.exit_code == 0, scheduled.output
    due = dt.datetime(2099, 12, 1, 9, 0, tzinfo=dt.UTC)
    [result] = run_due(config, clock=lambda: due)
    assert result.outcome == "sent"
    # The list changes after it went: two join, one leaves.
    subscribers(2, start=3)
    store.unsubscribe(first[0], source="cli")

    assert listed(runner, "--all") == (["3"], [3])
