"""``newsletter report``: per issue, across issues, the list by week; table, JSON, CSV,
and an HTML page checked in a real headless Chromium."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from newsletter.cli import cli
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.returns import soft_bounces
from newsletter.store.schema import ledger as ledger_table
from tests.send.conftest import SEED

SLUG = "stem-cells-in-breast-milk"


@pytest.fixture
def sent_issue(runner: CliRunner, subscribers: Callable[..., list[int]], store: Store) -> list[int]:
    """The seed issue sent to six readers, then what readers and mailboxes did."""
    ids = subscribers(6)
    store.add("later@example.org", topics=["research"], status="pending", source="web")
    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert result.exit_code == 0, result.output
    store.unsubscribe(ids[0], source="web", campaign_id=1)  # through the issue's link
    store.unsubscribe(ids[1], source="cli")  # another way, within 7 days
    store.mark(ids[2], "complained")
    store.mark(ids[3], "bounced", reason="550 5.1.1 no such user")
    with store.engine.begin() as connection:
        connection.execute(
            update(ledger_table)
            .where(ledger_table.c.subscriber_id == ids[3])
            .values(state="failed", error="bounced: 550 5.1.1")
        )
        connection.execute(
            soft_bounces.insert().values(
                subscriber_id=ids[4], campaign_id=1, at=campaign_rows.now()
            )
        )
    return ids


def test_report_table_for_one_issue(runner: CliRunner, sent_issue: list[int]) -> None:
    result = runner.invoke(cli, ["report", SEED])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "ISSUE", "SENT", "ON", "RECIPIENTS", "HANDED", "OVER", "FAILED", "UNKNOWN", "BOUNCED",
        "H/S", "COMPLAINED", "UNSUB", "(7", "D)", "OPENS", "(READERS)", "CLICKS", "(READERS)",
    ]  # fmt: skip
    cells = lines[1].split()
    assert cells[0] == SLUG
    assert cells[2:] == ["6", "5", "1", "0", "1/1", "1", "1", "(2)", "-", "-"]
    assert "  opens and clicks: not tracked (tracking.clicks or sendgrid.tracking)" in lines
    assert "The list by week:" in lines
    assert "Subscribers by source: cli 6, web 1" in lines


def test_report_json_and_csv_carry_every_count(runner: CliRunner, sent_issue: list[int]) -> None:
    data = json.loads(runner.invoke(cli, ["report", "--format", "json"]).output)
    [issue] = data["issues"]
    assert {key: issue[key] for key in ("recipients", "handed_over", "failed", "bounced_hard",
            "bounced_soft", "complained", "unsubscribed", "unsubscribed_within_7_days")} == {
        "recipients": 6, "handed_over": 5, "failed": 1, "bounced_hard": 1, "bounced_soft": 1,
        "complained": 1, "unsubscribed": 1, "unsubscribed_within_7_days": 2,
    }  # fmt: skip
    [week] = data["list_by_week"]
    assert {k: week[k] for k in ("active", "pending", "unsubscribed", "bounced", "complained")} == {
        "active": 2,
        "pending": 1,
        "unsubscribed": 2,
        "bounced": 1,
        "complained": 1,
    }
    assert week["joined"] == 7
    assert data["new_subscribers_by_source"] == {"cli": 6, "web": 1}

    rows = list(
        csv.DictReader(io.StringIO(runner.invoke(cli, ["report", "--format", "csv"]).output))
    )
    assert [
        (row["issue"], row["recipients"], row["handed_over"], row["clicks"]) for row in rows
    ] == [(SLUG, "6", "5", "")]


def test_report_for_an_issue_never_sent_is_an_error(runner: CliRunner, project: Path) -> None:
    result = runner.invoke(cli, ["report", SEED])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {SEED}: no campaign for it yet; 'newsletter status' lists them\n"
    )


@pytest.mark.chromium
def test_html_report_renders_offline_in_chromium_with_titled_charts(
    runner: CliRunner, sent_issue: list[int], project: Path, browser: Any
) -> None:
    result = runner.invoke(cli, ["report", "--format", "html", "--out", "report.html"])
    assert result.exit_code == 0, result.output
    html = (project / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )

    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "request", lambda request: request.url.startswith("file:") or problems.append(request.url)
    )
    page.goto((project / "report.html").as_uri())

    for name in (
        f"Funnel of {SLUG}",
        "Deliveries per issue",
        "Unsubscribes per issue",
        "The list by week",
    ):
        chart = page.get_by_role("img", name=name)
        assert chart.count() == 1, name
        assert chart.bounding_box()["height"] > 50  # laid out, not collapsed
    assert page.get_by_role("row", name=SLUG).count() == 1
    page.emulate_media(media="print")
    assert page.get_by_role("img", name="The list by week").is_visible()
    assert problems == []
    page.close()


def test_open_needs_the_html_format(runner: CliRunner, sent_issue: list[int]) -> None:
    result = runner.invoke(cli, ["report", "--open"])

    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "Error: --open needs --format html"


def test_report_csv_to_a_file(runner: CliRunner, sent_issue: list[int], project: Path) -> None:
    result = runner.invoke(cli, ["report", "--format", "csv", "--out", "issues.csv"])

    assert result.exit_code == 0, result.output
    assert result.output == "Wrote issues.csv\n"
    header = (project / "issues.csv").read_text().splitlines()[0]
    assert header.startswith("issue,subject,campaign_id,started,provider,recipients,handed_over")
