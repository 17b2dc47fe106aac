"""``newsletter report`` on a subject test: each subject's sample, readers and rate, the
rest, and the winner with the reason, in the table, JSON, CSV and the HTML page; on
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.schedule import run_due
from newsletter.store import Store
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import (
    SUBJECTS,
    later,
    report_events,
    tracked_sendgrid,
    variants_in_ledger,
    with_variants,
)

pytestmark = pytest.mark.usefixtures("secret", "on_both")


@pytest.fixture
def tested(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> tuple[Config, int, dict[int, int | None]]:
    """A subject test whose sample went out (40 readers: 4 each for A and B, the rest 32)."""
    config = tracked_sendgrid(configure, sendgrid)
    with_variants(project)
    subscribers(40)
    sent = runner.invoke(cli, ["send", SEED, "--yes"])
    assert sent.exit_code == 0, sent.output
    [campaign] = campaign_rows.list_campaigns(store)
    return config, campaign.id, variants_in_ledger(store, campaign.id)


def test_the_report_shows_each_subject_and_why_the_winner_won(
    tested: tuple[Config, int, dict[int, int | None]], store: Store, runner: CliRunner
) -> None:
    config, campaign_id, variants = tested
    a = [reader for reader, variant in variants.items() if variant == 1]
    b = [reader for reader, variant in variants.items() if variant == 2]
    report_events(store, campaign_id, "click", a[:1] + b[:3])

    waiting = runner.invoke(cli, ["report", SEED])
    assert waiting.exit_code == 0, waiting.output
    assert "    winner: not decided yet: the rest goes at " in waiting.output

    [result] = run_due(config, clock=later(4.1))
    assert result.outcome == "sent", result.message
    decided = runner.invoke(cli, ["report", SEED])

    assert decided.exit_code == 0, decided.output
    lines = decided.output.splitlines()
    start = lines.index("  subject test by clicks, sample 20%:")
    assert lines[start + 1 : start + 5] == [
        f"    A  25.0% clicked (1 of 4 handed over, 4 in the sample): {SUBJECTS[0]}",
        f"    B  75.0% clicked (3 of 4 handed over, 4 in the sample): {SUBJECTS[1]}",
        "    rest: 32 (32 handed over)",
        "    winner: B, the higher click rate (A 25.0% (1 of 4), B 75.0% (3 of 4) clicked)",
    ]

    data = json.loads(runner.invoke(cli, ["report", SEED, "--format", "json"]).output)
    test = data["issues"][0]["subject_test"]
    assert (test["winner"], test["decided_by"], test["rest"]) == ("B", "measured", 32)
    assert [(v["letter"], v["readers"], v["handed_over"], v["rate"]) for v in test["variants"]] == [
        ("A", 1, 4, 25.0),
        ("B", 3, 4, 75.0),
    ]

    rows = list(
        csv.DictReader(io.StringIO(runner.invoke(cli, ["report", "--format", "csv"]).output))
    )
    assert rows[0]["subject_test"] == (
        "A 25.0% (1 of 4) | B 75.0% (3 of 4) | winner: B, the higher click rate "
        "(A 25.0% (1 of 4), B 75.0% (3 of 4) clicked)"
    )

    page = runner.invoke(cli, ["report", "--format", "html", "--out", "report.html"])
    assert page.exit_code == 0, page.output
    html = Path("report.html").read_text(encoding="utf-8")
    assert "<h2>Subject test: stem-cells-in-breast-milk</h2>" in html
    assert '<th scope="row">B (winner)</th>' in html
    assert "<td>75.0%</td>" in html
    assert "Winner: B, the higher click rate" in html


def test_the_report_says_when_too_little_data_fell_back_to_the_first_subject(
    tested: tuple[Config, int, dict[int, int | None]], store: Store, runner: CliRunner
) -> None:
    config, campaign_id, variants = tested
    b = [reader for reader, variant in variants.items() if variant == 2]
    report_events(store, campaign_id, "click", b[:1])  # one reader: min_events is 2
    run_due(config, clock=later(4.1))

    campaign_rows.start_campaign(  # another issue's campaign, without a test
        store, slug="plain", issue_path="issues/plain.md", subject="Plain", topics=[],
        provider="sendgrid",
    )  # fmt: skip

    listed = runner.invoke(cli, ["report"])

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    start = lines.index("Subject tests:")
    assert lines[start + 1 :][:6] == [
        "stem-cells-in-breast-milk:",
        "  subject test by clicks, sample 20%:",
        f"    A  0.0% clicked (0 of 4 handed over, 4 in the sample): {SUBJECTS[0]}",
        f"    B  25.0% clicked (1 of 4 handed over, 4 in the sample): {SUBJECTS[1]}",
        "    rest: 32 (32 handed over)",
        "    winner: A, the first variant: too little data (1 reader(s) clicked in the "
        "sample, fewer than min_events 2)",
    ]
    assert "plain:" not in lines[start:]
