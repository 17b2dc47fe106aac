"""The rate limits are the list's, not a campaign's: a due step waits for what an
issue's campaign used of ``sending.per_hour`` before it, and a scheduled issue for what
a step used. A real ``run-due``, killed once it says it waits (which it now says,
instead of waiting in silence): nothing was handed over."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.automations.steps import run_due_steps
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule_queue import schedule_issue
from newsletter.store import Store
from tests.conftest import SEED_ISSUE
from tests.send.test_send_cli import outbox_messages

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("on_both")]


def test_a_due_step_waits_for_the_hourly_cap_an_issue_used(
    welcome: Config,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    runner: CliRunner,
    project: Path,
    store: Store,
) -> None:
    configure(sending={"per_hour": 3})
    subscribers(3)  # they are due for the welcome step too
    sent = runner.invoke(cli, ["send", SEED_ISSUE, "--yes"])
    assert sent.exit_code == 0, sent.output
    assert len(outbox_messages(project)) == 3  # the hour's three are used

    said, returncode = run_due_until_it_waits(project)

    assert returncode == -signal.SIGKILL, "".join(said)
    assert said[0] == "welcome/01-thanks: sending to 3 reader(s) through outbox (campaign 2)\n"
    waits = re.fullmatch(
        r"welcome/01-thanks: waiting ([\d.]+) s for the rate limit \(sending.rate, per_hour, "
        r"per_day\); nothing is handed over meanwhile\n",
        said[1],
    )
    assert waits is not None, said
    assert 3000 < float(waits[1]) <= 3600  # until the issue's copies are an hour old
    assert len(outbox_messages(project)) == 3  # no welcome mail went out
    counts = campaign_rows.state_counts(store, 2)  # the step's campaign: nothing handed over
    assert counts["sent"] == 0 and counts["unknown"] == 0, counts


def test_a_scheduled_issue_waits_for_the_hourly_cap_a_step_used(
    welcome: Config,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    project: Path,
    store: Store,
) -> None:
    config = configure(sending={"per_hour": 3})
    subscribers(3)
    run_due_steps(config)  # three welcome mails: the hour's three are used
    assert len(outbox_messages(project)) == 3
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    plan = plan_send(config, project / SEED_ISSUE)
    schedule_issue(config, plan, due, zone="UTC", clock=lambda: due - dt.timedelta(hours=1))

    said, returncode = run_due_until_it_waits(project)

    assert returncode == -signal.SIGKILL, "".join(said)
    assert said[0].startswith(f"{plan.slug}: sending to 3 recipient(s) through outbox")
    assert re.fullmatch(
        rf"{plan.slug}: waiting 3[0-5]\d\d\.\d s for the rate limit \(sending.rate, per_hour, "
        r"per_day\); nothing is handed over meanwhile\n",
        said[1],
    ), said
    assert len(outbox_messages(project)) == 3  # no copy of the issue went out


def run_due_until_it_waits(project: Path) -> tuple[list[str], int]:
    """A real run-due's lines up to the first wait it announces (killed there), and how it
    ended; all its lines if it ends without waiting."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "newsletter", "run-due"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    said: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # ends at once if run-due finishes without waiting
            said.append(line)
            if "waiting" in line:
                process.kill()  # mid-wait: nothing may have been handed over
                break
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return said, process.returncode
