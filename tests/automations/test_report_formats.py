"""``newsletter report --format csv`` and ``--format html`` carry each step's figures,
summed over the versions of its file, as the terminal table does."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import html as lxml_html

from newsletter.automations.steps import run_due_steps
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import Store

pytestmark = pytest.mark.usefixtures("on_both")


@pytest.fixture
def two_versions(welcome: Config, store: Store, write_step: Callable[..., Path]) -> Config:
    """01-thanks sent in two versions (to Ada, then to Bob and Cy); 02 never due."""
    store.add("ada@example.org")
    run_due_steps(welcome)
    write_step("01-thanks", "0 days", title="Welcome aboard")
    store.add("bob@example.org")
    store.add("cy@example.org")
    run_due_steps(welcome)
    return welcome


def test_the_csv_has_a_row_per_step_after_the_issues(
    two_versions: Config, runner: CliRunner
) -> None:
    result = runner.invoke(cli, ["report", "--format", "csv"])

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    versions = [row for row in rows if not row["versions"]]
    assert sorted(row["recipients"] for row in versions) == ["1", "2"]
    assert all(row["issue"].startswith("welcome/01-thanks@") for row in versions)
    step = rows[-1]
    assert {name: step[name] for name in ("issue", "versions", "recipients", "handed_over")} == {
        "issue": "welcome/01-thanks",
        "versions": "2",
        "recipients": "3",
        "handed_over": "3",
    }
    assert (step["failed"], step["unknown"], step["pending"], step["bounced_hard"]) == (
        "0",
        "0",
        "0",
        "0",
    )
    assert step["subject"] == step["campaign_id"] == step["opens"] == ""


def test_the_html_page_has_a_table_of_the_steps(
    two_versions: Config, runner: CliRunner, project: Path
) -> None:
    result = runner.invoke(cli, ["report", "--format", "html", "--out", "report.html"])

    assert result.exit_code == 0, result.output
    page = lxml_html.fromstring((project / "report.html").read_text(encoding="utf-8"))
    [table] = page.xpath('//div[@aria-label="Automations, per step"]/table')
    headings = [cell.text_content() for cell in table.xpath(".//thead//th")]
    cells = [cell.text_content() for cell in table.xpath(".//tbody/tr[1]/*")]
    assert dict(zip(headings, cells, strict=True)) == {
        "Step": "welcome/01-thanks",
        "Versions": "2",
        "Recipients": "3",
        "Handed over": "3",
        "Failed": "0",
        "Unknown": "0",
        "Pending": "0",
        "Bounced (hard/soft)": "0/0",
        "Complained": "0",
        "Unsubscribed": "0",
        "Opens": "–",
        "Clicks": "–",
    }
