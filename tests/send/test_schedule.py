"""Scheduled sending: ``send --at``, ``send_at:``, ``schedule``, ``run-due``.

Time is moved through the ``clock`` argument of the library, never slept through.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError, SendError
from newsletter.send import campaign_rows
from newsletter.send.lease import Lease
from newsletter.send.plan import plan_send
from newsletter.send.schedule import DueChecker, run_due
from newsletter.send.schedule_queue import list_schedule, schedule_issue
from newsletter.send.schedule_times import parse_when, time_zone
from newsletter.store import Store
from tests.send.conftest import SEED
from tests.send.test_send_cli import body_of, outbox_messages

BERLIN = time_zone("Europe/Berlin", what="test")
# The seed issue is scheduled for this moment in most tests (10:00 in Berlin).
DUE = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)


def clock_at(moment: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: moment


@pytest.fixture
def berlin(configure: Callable[..., Config]) -> Config:
    return configure(timezone="Europe/Berlin")


def schedule_seed(config: Config, project: Path, *, at: dt.datetime = DUE) -> None:
    plan = plan_send(config, project / SEED)
    schedule_issue(
        config, plan, at, zone="Europe/Berlin", clock=clock_at(at - dt.timedelta(days=1))
    )


def test_send_at_schedules_instead_of_sending_and_schedule_lists_it(
    berlin: Config, runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(3)

    result = runner.invoke(cli, ["send", SEED, "--at", "2099-12-01 09:00", "--yes"])

    assert result.exit_code == 0, result.output
    assert "Checks:     ok" in result.output  # the plan and checks ran at scheduling time
    assert result.output.splitlines()[-1].startswith(
        "Scheduled:  stem-cells-in-breast-milk for 2099-12-01 09:00 CET (Europe/Berlin)."
    )
    assert not (project / "outbox").exists()

    listed = runner.invoke(cli, ["schedule"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        "ISSUE                      WHEN                  AUDIENCE  PROVIDER  STATE",
        "stem-cells-in-breast-milk  2099-12-01 09:00 CET  3         outbox    queued",
    ]


def test_tz_option_and_offsets_give_the_instant_the_editor_meant(berlin: Config) -> None:
    now = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.UTC)
    assert parse_when("2030-07-01 09:00", BERLIN, now=now, what="--at") == dt.datetime(
        2030,
        7,
        1,
        7,
        0,
        tzinfo=dt.UTC,  # summer time: UTC+2
    )
    assert parse_when("2030-07-01T09:00-04:00", BERLIN, now=now, what="--at").hour == 13
    assert parse_when("tomorrow 9am", BERLIN, now=now, what="--at") == dt.datetime(
        2030, 1, 11, 8, 0, tzinfo=dt.UTC
    )
    assert parse_when("today 5:30pm", BERLIN, now=now, what="--at").hour == 16
    with pytest.raises(SendError, match="--at: cannot read 'next week' as a time"):
        parse_when("next week", BERLIN, now=now, what="--at")


def test_a_time_in_the_past_is_refused(
    berlin: Config, runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(1)

    result = runner.invoke(cli, ["send", SEED, "--at", "2020-01-01 09:00", "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: {SEED}: 2020-01-01 09:00 CET is in the past; give a later time, "
        "or send it now: without --at, and with --now if the issue has send_at"
    )
    assert runner.invoke(cli, ["schedule"]).output == "Nothing scheduled.\n"


def test_an_issue_with_errors_is_refused_at_scheduling_time(
    berlin: Config, runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(1)
    issue = project / SEED
    issue.write_text(issue.read_text() + "\nSee [our page](/relative).\n")

    result = runner.invoke(cli, ["send", SEED, "--at", "2099-12-01 09:00", "--yes"])

    assert result.exit_code == 1
    assert "is not an absolute http(s) URL" in result.output
    assert "the pre-send checks found 1 error(s)" in result.output
    assert runner.invoke(cli, ["schedule"]).output == "Nothing scheduled.\n"


def test_send_at_in_the_front_matter_schedules_and_now_overrides_it(
    berlin: Config, runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(2)
    issue = project / SEED
    issue.write_text(
        issue.read_text().replace(
            "date: 2026-11-26\n", "date: 2026-11-26\nsend_at: 2099-06-01 07:30\n"
        )
    )

    scheduled = runner.invoke(cli, ["send", SEED, "--yes"])

    assert scheduled.exit_code == 0, scheduled.output
    assert "for 2099-06-01 07:30 CEST (Europe/Berlin)" in scheduled.output
    assert not (project / "outbox").exists()

    now = runner.invoke(cli, ["send", SEED, "--now", "--yes"])
    assert now.exit_code == 0, now.output
    assert len(outbox_messages(project)) == 2


def test_run_due_sends_only_when_the_time_has_come_and_only_once(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(3)
    schedule_seed(berlin, project)

    early = run_due(berlin, clock=clock_at(DUE - dt.timedelta(minutes=1)))
    assert early == []
    assert not (project / "outbox").exists()

    lines: list[str] = []
    [result] = run_due(berlin, clock=clock_at(DUE), say=lines.append)
    assert result.outcome == "sent"
    assert lines[-1] == "stem-cells-in-breast-milk: campaign 1: sent 3, failed 0, unknown 0"
    assert len(outbox_messages(project)) == 3

    assert run_due(berlin, clock=clock_at(DUE + dt.timedelta(minutes=1))) == []
    assert len(outbox_messages(project)) == 3
    assert list_schedule(berlin) == []
    [sent] = list_schedule(berlin, include_sent=True)
    assert sent.state == "sent"


def test_a_second_run_due_leaves_a_campaign_being_sent_to_its_sender(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(2)
    schedule_seed(berlin, project)
    campaign = campaign_rows.start_campaign(
        store, slug="stem-cells-in-breast-milk", issue_path=SEED, subject="Stem Cells",
        topics=["research"], provider="outbox",
    )  # fmt: skip

    with Lease(store, campaign):  # another run-due is sending it right now
        [busy] = run_due(berlin, clock=clock_at(DUE))
    assert busy.outcome == "busy"
    assert "another process is sending it" in busy.message
    assert not (project / "outbox").exists()
    assert list_schedule(berlin)[0].state == "queued"

    [sent] = run_due(berlin, clock=clock_at(DUE))
    assert sent.outcome == "sent"
    assert len(outbox_messages(project)) == 2


def test_an_issue_changed_after_scheduling_is_rebuilt_rechecked_and_says_so(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], runner: CliRunner
) -> None:
    subscribers(1)
    schedule_seed(berlin, project)
    issue = project / SEED
    issue.write_text(issue.read_text() + "\nA late correction.\n")

    lines: list[str] = []
    [result] = run_due(berlin, clock=clock_at(DUE), say=lines.append)

    assert result.outcome == "sent"
    assert lines[0] == (
        "stem-cells-in-breast-milk: the issue changed after it was scheduled: rebuilt and "
        "re-checked"
    )
    [message] = outbox_messages(project)
    assert "A late correction." in body_of(message, "plain")
    listed = runner.invoke(cli, ["schedule", "--all"]).output
    assert "stem-cells-in-breast-milk: the issue changed after it was scheduled" in listed


def test_an_issue_that_now_fails_its_checks_is_held_with_the_reason(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], runner: CliRunner
) -> None:
    subscribers(1)
    schedule_seed(berlin, project)
    issue = project / SEED
    issue.write_text(issue.read_text() + "\nSee [our page](/relative).\n")

    [result] = run_due(berlin, clock=clock_at(DUE))

    assert result.outcome == "held"
    assert not (project / "outbox").exists()
    listed = runner.invoke(cli, ["schedule"]).output.splitlines()
    assert listed[1].endswith("held")
    assert listed[2].startswith("stem-cells-in-breast-milk: the pre-send checks found 1 error(s): ")
    assert "'/relative' is not an absolute http(s) URL" in listed[2]
    [again] = run_due(berlin, clock=clock_at(DUE + dt.timedelta(hours=1)))
    assert again.outcome == "skipped"  # stays held
    assert not (project / "outbox").exists()


def test_run_due_command_exits_cleanly_with_nothing_due(
    berlin: Config, runner: CliRunner, subscribers: Callable[..., list[int]], project: Path
) -> None:
    subscribers(1)
    schedule_seed(berlin, project, at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))

    result = runner.invoke(cli, ["run-due"])

    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert not (project / "outbox").exists()


def test_cancel_takes_an_issue_off_the_schedule(
    berlin: Config, runner: CliRunner, subscribers: Callable[..., list[int]], project: Path
) -> None:
    subscribers(1)
    schedule_seed(berlin, project)

    result = runner.invoke(cli, ["schedule", "cancel", SEED])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "Cancelled: stem-cells-in-breast-milk (was due 2030-03-01 10:00 CET).\n"
    )
    assert run_due(berlin, clock=clock_at(DUE)) == []
    again = runner.invoke(cli, ["schedule", "cancel", SEED])
    assert again.exit_code == 1
    assert "nothing scheduled for it" in again.output


def test_the_serve_background_checker_sends_what_is_due(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(2)
    schedule_seed(berlin, project)
    checker = DueChecker(berlin, interval=0.05, clock=clock_at(DUE))

    checker.start()
    try:
        deadline = time.monotonic() + 60
        while list_schedule(berlin, include_sent=True)[0].state != "sent":
            assert time.monotonic() < deadline, "the background check never sent the issue"
            time.sleep(0.05)
    finally:
        checker.stop()

    assert len(outbox_messages(project)) == 2


def test_an_unknown_time_zone_is_a_config_error_naming_the_key(
    configure: Callable[..., Config], runner: CliRunner
) -> None:
    with pytest.raises(ConfigError) as caught:
        configure(timezone="Mars/Olympus_Mons")
    assert "newsletter.yaml: timezone: unknown time zone 'Mars/Olympus_Mons'" in str(caught.value)
    configure(timezone="UTC")

    result = runner.invoke(cli, ["send", SEED, "--at", "2099-01-01 09:00", "--tz", "Nowhere/X"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: --tz: unknown time zone 'Nowhere/X'")


def test_an_issue_whose_campaign_started_is_resumed_not_scheduled(
    berlin: Config, runner: CliRunner, subscribers: Callable[..., list[int]], store: Store
) -> None:
    subscribers(1)
    campaign_rows.start_campaign(
        store, slug="stem-cells-in-breast-milk", issue_path=SEED, subject="Stem Cells",
        topics=["research"], provider="outbox",
    )  # fmt: skip

    result = runner.invoke(cli, ["send", SEED, "--at", "2099-12-01 09:00", "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: {SEED}: its campaign 1 already started; resume it now: without --at, "
        "and with --now if the issue has send_at"
    )


def hold_seed(config: Config, project: Path) -> str:
    """Schedule the seed issue, break it, and let run-due hold it; the good text back."""
    schedule_seed(config, project)
    issue = project / SEED
    good = issue.read_text()
    issue.write_text(good + "\nSee [our page](/relative).\n")
    [held] = run_due(config, clock=clock_at(DUE))
    assert held.outcome == "held"
    return good


def test_a_held_issue_fixed_and_sent_with_send_is_no_longer_listed_as_held(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], runner: CliRunner
) -> None:
    subscribers(2)
    good = hold_seed(berlin, project)
    (project / SEED).write_text(good)  # the editor fixes it and sends it by hand

    sent = runner.invoke(cli, ["send", SEED, "--yes"])

    assert sent.exit_code == 0, sent.output
    assert sent.output.splitlines()[-1] == (
        "Schedule:  the held entry for stem-cells-in-breast-milk is marked sent."
    )
    assert len(outbox_messages(project)) == 2
    assert runner.invoke(cli, ["schedule"]).output == "Nothing scheduled.\n"
    listed = runner.invoke(cli, ["schedule", "--all"]).output.splitlines()
    assert listed[1].endswith("sent")
    assert listed[2] == (
        "stem-cells-in-breast-milk: sent with 'newsletter send': sent 2, failed 0, unknown 0"
    )
    assert run_due(berlin, clock=clock_at(DUE + dt.timedelta(hours=1))) == []


def test_a_queued_issue_sent_early_with_send_now_is_not_sent_again_at_its_time(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], runner: CliRunner
) -> None:
    subscribers(1)
    schedule_seed(berlin, project)

    sent = runner.invoke(cli, ["send", SEED, "--now", "--yes"])

    assert sent.exit_code == 0, sent.output
    assert "the queued entry for stem-cells-in-breast-milk is marked sent" in sent.output
    assert run_due(berlin, clock=clock_at(DUE)) == []
    assert len(outbox_messages(project)) == 1


def test_run_due_says_which_held_issues_it_skipped_and_why(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(1)
    hold_seed(berlin, project)

    lines: list[str] = []
    [skipped] = run_due(berlin, clock=clock_at(DUE + dt.timedelta(hours=1)), say=lines.append)

    assert skipped.outcome == "skipped"
    assert lines == [skipped.message]
    assert skipped.message.startswith(
        "stem-cells-in-breast-milk: skipped, held (was due 2030-03-01 10:00 CET): the "
        "pre-send checks found 1 error(s): "
    )
    assert skipped.message.endswith(
        f"; fix it, then send it ('newsletter send {project / SEED} --now') or schedule it "
        "again (--at WHEN)"
    )
    assert not (project / "outbox").exists()


def test_run_due_command_prints_the_skipped_held_issue_and_exits_0(
    berlin: Config, project: Path, subscribers: Callable[..., list[int]], runner: CliRunner
) -> None:
    subscribers(1)
    hold_seed(berlin, project)

    result = runner.invoke(cli, ["run-due"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("stem-cells-in-breast-milk: skipped, held (was due ")
