"""``newsletter report``: per issue, across issues, the list by week; table, JSON, CSV,
and an HTML page checked in a real headless Chromium."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from newsletter.cli import cli
from newsletter.reports.charts import nice_ticks
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
        "H/S", "BLOCKED", "COMPLAINED", "UNSUB", "(7", "D)", "OPENS", "(READERS)", "CLICKS",
        "(READERS)",
    ]  # fmt: skip
    cells = lines[1].split()
    assert cells[0] == SLUG
    assert cells[2:] == ["6", "5", "1", "0", "1/1", "0", "1", "1", "(2)", "-", "-"]
    assert "  opens and clicks: not tracked (tracking.clicks or <provider>.tracking)" in lines
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


def test_count_axes_have_whole_distinct_nice_ticks_up_to_the_largest_bar() -> None:
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(1) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(14) == [0, 5, 10, 15]
    assert nice_ticks(1234) == [0, 500, 1000, 1500]
    for largest in range(0, 2000, 7):
        ticks = nice_ticks(largest)
        assert ticks[0] == 0 and ticks[-1] >= largest
        assert len(set(ticks)) == len(ticks) <= 6
        steps = {b - a for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1


LONG_TITLES = [
    "The latest from Crock Journal: winter stockpots, ferments and a lid that fits",
    "Milk banks, explained: who gives, who receives and how it is screened",
    "Twelve questions about donor milk that readers sent us this autumn",
]


@pytest.fixture
def long_titled_issues(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    """Four campaigns, three with long titles, and a few unsubscribes per issue (counts
    of 0 to 3: the scale the editor saw read '0, 2, 3')."""
    ids = subscribers(8)
    for number, title in enumerate(LONG_TITLES, start=1):
        path = project / "issues" / f"2026-12-0{number}-long-{number}.md"
        path.write_text(
            f'---\ntitle: "{title}"\npreheader: What is in this issue.\n---\nHello.\n',
            encoding="utf-8",
        )
        result = runner.invoke(cli, ["send", str(path), "--yes"])
        assert result.exit_code == 0, result.output
        for reader in ids[:number]:
            store.unsubscribe(reader, source="web", campaign_id=number)
    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert result.exit_code == 0, result.output


# What the test measures in the page: every chart's label, legend, tick and bar boxes.
MEASURE = """() => [...document.querySelectorAll("svg.chart")].map(svg => {
  const box = element => { const r = element.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const title = element => { const t = element.querySelector("title");
    return t ? t.textContent : null; };
  return {
    name: svg.querySelector(":scope > title").textContent,
    svg: box(svg),
    labels: [...svg.querySelectorAll("text.axis-label")].map(t => ({
      box: box(t), shown: [...t.childNodes].filter(n => n.nodeType === 3)
        .map(n => n.textContent).join(""), full: title(t)})),
    legend: [...svg.querySelectorAll(".legend > *")].map(box),
    ticks: [...svg.querySelectorAll("text.tick")].map(t => ({text: t.textContent, box: box(t)})),
    bars: [...svg.querySelectorAll(":scope > rect")].map(r => ({box: box(r), tip: title(r)})),
  };
})"""


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5
    )


@pytest.mark.chromium
@pytest.mark.parametrize("width", [1200, 390])
def test_report_charts_read_right_at_desktop_and_phone_width(
    runner: CliRunner, long_titled_issues: None, project: Path, browser: Any, width: int
) -> None:
    result = runner.invoke(cli, ["report", "--format", "html", "--out", "report.html"])
    assert result.exit_code == 0, result.output
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto((project / "report.html").as_uri())

    charts = {chart["name"]: chart for chart in page.evaluate(MEASURE)}

    for name in ("Deliveries per issue", "Unsubscribes per issue"):
        chart = charts[name]
        labels = chart["labels"]
        assert len(labels) == 4, name
        for label in labels:
            # Under its own bars, cut with an ellipsis, the whole title in the tooltip.
            subject = label["full"].rsplit(" (", 1)[0]
            own = [bar["box"] for bar in chart["bars"] if bar["tip"].startswith(f"{subject}, ")]
            assert own, label
            centre = (label["box"]["left"] + label["box"]["right"]) / 2
            assert min(b["left"] for b in own) - 1 <= centre <= max(b["right"] for b in own) + 1
            assert label["box"]["top"] >= max(b["bottom"] for b in own) - 0.5
            if subject in LONG_TITLES:
                assert label["shown"].endswith("…") and subject.startswith(label["shown"][:-1])
            # Not cut by the chart's edge, not over the legend.
            assert chart["svg"]["left"] - 0.5 <= label["box"]["left"]
            assert label["box"]["right"] <= chart["svg"]["right"] + 0.5
            assert label["box"]["bottom"] <= chart["svg"]["bottom"] + 0.5
            assert not any(overlap(label["box"], key) for key in chart["legend"]), name
        for a, b in itertools.combinations(labels, 2):
            assert not overlap(a["box"], b["box"]), (name, a["shown"], b["shown"])
        # Whole, distinct ticks from 0, the highest at or above the tallest bar.
        ticks = [int(tick["text"]) for tick in chart["ticks"]]
        assert ticks[0] == 0 and ticks == sorted(set(ticks)), (name, ticks)
        highest = min(tick["box"]["top"] for tick in chart["ticks"])
        tallest = min(bar["box"]["top"] for bar in chart["bars"] if bar["box"]["bottom"] > 0)
        assert highest <= tallest + 0.5, name
    assert [int(t["text"]) for t in charts["Unsubscribes per issue"]["ticks"]] == [0, 1, 2, 3]

    # The issue column keeps its words together: three words or more to a line.
    lines = page.evaluate(
        """title => { const cell = [...document.querySelectorAll(".issues th[scope=row]")]
            .find(th => th.firstChild.textContent.trim() === title);
          const range = document.createRange(); range.selectNodeContents(cell.firstChild);
          return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }""",
        LONG_TITLES[0],
    )
    assert 1 <= lines <= len(LONG_TITLES[0].split()) / 3
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.close()
