"""``newsletter send --segment`` and ``segment:`` in front matter, to the outbox, on
SQLite and PostgreSQL: the plan says who the segment leaves out, and only its readers
get the issue."""

from __future__ import annotations

import datetime as dt
import mailbox
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.send.plan import plan_send
from newsletter.send.schedule import run_due
from newsletter.send.schedule_queue import schedule_issue
from newsletter.store import Store

SEED = "issues/2026-11-26-stem-cells-in-breast-milk.md"
GB = 'attributes.country == "GB"'


def recipients(project: Path) -> list[str]:
    folder = mailbox.Maildir(project / "outbox", factory=None, create=False)
    return sorted(
        str(message_from_bytes(folder.get_bytes(key), policy=policy.default)["To"])
        for key in folder.iterkeys()
    )


@pytest.fixture
def readers(project: Path, project_store: Store) -> Store:
    with (project / "newsletter.yaml").open("a", encoding="utf-8") as config:
        config.write(f"segments:\n  uk: '{GB}'\n")
    store = project_store
    store.add("ann@example.org", topics=["research"], attributes={"country": "GB"})
    store.add("bob@example.org", topics=["research"], attributes={"country": "FR"})
    store.add("cat@example.org", topics=["stories"], attributes={"country": "GB"})
    store.add("dan@example.org", topics=["research"], attributes={"country": "GB"})
    store.add("eve@example.org", topics=["research"], attributes={"country": "GB"})
    store.unsubscribe(store.find("eve@example.org").id, source="cli")  # type: ignore[union-attr]
    store.add(
        "fay@example.org", topics=["research"], attributes={"country": "GB"}, status="pending"
    )
    return store


def test_send_to_a_saved_segment(runner: CliRunner, project: Path, readers: Store) -> None:
    result = runner.invoke(cli, ["send", SEED, "--segment", "uk", "--yes"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[3:7] == [
        f"Segment:    uk ({GB})",
        "Audience:   2 of 4 active subscriber(s): those with the topic research in the segment",
        "Left out:   1 active subscriber(s) with it outside the segment; 1 active "
        "subscriber(s) without the topic research; 1 with it who unsubscribed, bounced or "
        "complained",
        "To send:    2",
    ]
    assert recipients(project) == ["ann@example.org", "dan@example.org"]

    again = runner.invoke(cli, ["send", SEED, "--segment", 'attributes.country == "FR"'])
    assert again.exit_code == 1
    assert again.output.startswith(f"Error: {SEED}: this issue's campaign 1 started on ")
    assert again.output.endswith(
        "a campaign keeps its recipients, so send it again without --segment to resume it\n"
    )
    resumed = runner.invoke(cli, ["send", SEED, "--yes"])
    assert resumed.exit_code == 0, resumed.output
    assert recipients(project) == ["ann@example.org", "dan@example.org"]


def test_a_segment_never_widens_the_audience(
    runner: CliRunner, project: Path, readers: Store
) -> None:
    everyone = 'status in ["active", "unsubscribed", "pending"] or topics contains "stories"'
    result = runner.invoke(cli, ["send", SEED, "--segment", everyone, "--yes"])

    assert result.exit_code == 0, result.output
    assert (
        "Audience:   3 of 4 active subscriber(s): those with the topic research in the segment"
        in result.output.splitlines()
    )
    assert recipients(project) == ["ann@example.org", "bob@example.org", "dan@example.org"]


def test_segment_in_the_front_matter(runner: CliRunner, project: Path, readers: Store) -> None:
    issue = project / SEED
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "topics: [research]\n",
            "topics: [research]\n"
            "segment: 'not clicked within 30 days and attributes.country != \"FR\"'\n",
        ),
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["send", SEED, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Audience:   2 of 4 active subscriber(s)" in result.output
    assert not (project / "outbox").exists() or recipients(project) == []

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert result.exit_code == 0, result.output
    assert recipients(project) == ["ann@example.org", "dan@example.org"]


def test_a_bad_segment_stops_the_send(runner: CliRunner, project: Path, readers: Store) -> None:
    issue = project / SEED
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "topics: [research]\n", "topics: [research]\nsegment: gb\n"
        ),
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert (result.exit_code, result.output) == (
        1,
        f"Error: {SEED}: front matter: segment: unknown segment 'gb'; newsletter.yaml "
        "defines: uk; or give an expression such as 'attributes.country == \"GB\"'\n",
    )
    result = runner.invoke(cli, ["send", SEED, "--segment", "uk", "--at", "2030-01-01 09:00"])
    assert result.exit_code == 2
    assert "--at cannot be combined with --segment" in result.output
    assert not (project / "outbox").exists() or recipients(project) == []


def test_run_due_sends_a_scheduled_issue_to_its_front_matter_segment(
    project: Path, readers: Store
) -> None:
    issue = project / SEED
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "topics: [research]\n", "topics: [research]\nsegment: uk\n"
        ),
        encoding="utf-8",
    )
    config = load_config(project / "newsletter.yaml")
    due = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)
    plan = plan_send(config, issue)
    assert plan.audience.recipients == 2
    schedule_issue(config, plan, due, zone="UTC", clock=lambda: due - dt.timedelta(days=1))

    [result] = run_due(config, clock=lambda: due)

    assert result.outcome == "sent"
    assert recipients(project) == ["ann@example.org", "dan@example.org"]


def test_check_names_a_bad_segment_in_the_front_matter(
    runner: CliRunner, project: Path, readers: Store
) -> None:
    issue = project / SEED
    source = issue.read_text(encoding="utf-8")
    issue.write_text(
        source.replace("topics: [research]\n", "topics: [research]\nsegment: uk\n"), "utf-8"
    )
    assert runner.invoke(cli, ["check", SEED]).exit_code == 0

    issue.write_text(
        source.replace(
            "topics: [research]\n", "topics: [research]\nsegment: 'topics contains \"nope\"'\n"
        ),
        "utf-8",
    )
    result = runner.invoke(cli, ["check", SEED])
    assert result.exit_code == 1
    assert (
        f"{SEED}: error: front matter: segment: segment 'topics contains \"nope\"': position "
        "17: unknown topic 'nope'; known topics: research, stories, events\n"
    ) in result.output
