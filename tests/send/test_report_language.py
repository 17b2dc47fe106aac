"""``newsletter report`` with ``language: de``: dates and counts the German way in the
table and the HTML page; JSON and CSV keep ISO 8601 and plain numbers. On SQLite and
PostgreSQL (``shared_store``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import update

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import Store
from newsletter.store.schema import campaigns
from tests.send.conftest import SEED

SENT = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)


def send_seed(runner: CliRunner, store: Store, add: Callable[..., list[int]]) -> None:
    """The seed issue to three readers, sent on 26 November 2026 to (as the campaign's
    snapshot says) 1234 of them: a count with a thousands separator."""
    add(3)
    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert result.exit_code == 0, result.output
    with store.engine.begin() as connection:
        connection.execute(update(campaigns).values(created_at=SENT, recipients=1234))


def test_german_report_writes_dates_and_counts_the_german_way(
    runner: CliRunner,
    configure: Callable[..., Config],
    shared_store: Store,
    project: Path,
) -> None:
    configure(language="de")
    send_seed(runner, shared_store, _adder(shared_store))

    table = runner.invoke(cli, ["report"])
    assert table.exit_code == 0, table.output
    row = table.output.splitlines()[1]
    assert "26. November 2026" in row
    assert " 1.234 " in row
    weeks = table.output.split("The list by week:\n")[1].splitlines()
    assert re.match(r"\d\d\.\d\d\.\d{4}  ", weeks[1]), weeks[1]  # WEEK OF: 23.11.2026

    html = runner.invoke(cli, ["report", "--format", "html"])
    assert html.exit_code == 0, html.output
    assert "<td>26. November 2026</td><td>1.234</td>" in html.output
    assert re.search(r"Generated \d{1,2}\. \w+ \d{4} \d\d:\d\d UTC\.", html.output)
    assert ">1.234 (100.0%)</text>" in html.output  # the funnel's first step
    assert "2026-11-26" not in html.output

    # The machine formats keep machine dates and plain numbers.
    [issue] = json.loads(runner.invoke(cli, ["report", "--format", "json"]).output)["issues"]
    assert issue["started"].startswith("2026-11-26T09:30")
    assert issue["recipients"] == 1234
    [row_csv] = csv.DictReader(
        io.StringIO(runner.invoke(cli, ["report", "--format", "csv"]).output)
    )
    assert row_csv["started"].startswith("2026-11-26") and row_csv["recipients"] == "1234"


def test_english_report_keeps_iso_dates_and_plain_counts(
    runner: CliRunner, configure: Callable[..., Config], shared_store: Store
) -> None:
    configure(language="en")
    send_seed(runner, shared_store, _adder(shared_store))

    row = runner.invoke(cli, ["report"]).output.splitlines()[1]
    assert row.split()[1:3] == ["2026-11-26", "1234"]
    html = runner.invoke(cli, ["report", "--format", "html"]).output
    assert "<td>2026-11-26</td><td>1234</td>" in html
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", html)


def _adder(store: Store) -> Callable[..., list[int]]:
    def add(count: int) -> list[int]:
        return [store.add(f"reader{n}@example.org", topics=["research"]).id for n in range(count)]

    return add
