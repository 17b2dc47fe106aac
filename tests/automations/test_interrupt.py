"""Ctrl-C (SIGINT) to a real ``newsletter run-due`` while a batch is with the provider:
the batch is let finish and recorded, nothing more is handed over, one line says how to
go on, exit 130, no traceback; the next run resumes and nobody gets anything twice. On
PostgreSQL too: the signal never lands in the middle of a database call. ``newsletter
serve``'s scheduled sends stop the same way on Ctrl-C or a stop request (SIGTERM).

The SendGrid stand-in holds the second of three requests without answering: the signal
comes while the sender waits for that answer, known from the stand-in, never from a
sleep, and the request is answered once the run said it is stopping.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule_queue import list_schedule, schedule_issue
from newsletter.store import Store
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED, sendgrid  # noqa: F401
from tests.web.live import serve_project

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("on_both")]

STOPPING = "Stopping: nothing more is handed over (Ctrl-C again to quit now).\n"
INTERRUPTED = "interrupted; run it again to resume\n"
SERVE_STOPPING = (
    "Stopping: a scheduled send under way stops after its batch with the provider "
    "(Ctrl-C again to quit now)."
)


def interrupt_run_due(project: Path, sendgrid: FakeSendGrid) -> tuple[int, str, str]:  # noqa: F811
    """run-due with 30 readers due in batches of 10, Ctrl-C while the second batch is
    with the provider, which answers once the run said it is stopping."""
    sendgrid.normal_next()
    release = sendgrid.hold_next()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    said = ""
    try:
        sendgrid.wait_for_requests(2, timeout=60)  # the second batch is with the provider
        process.send_signal(signal.SIGINT)
        while not said.endswith(STOPPING) and (line := process.stderr.readline()):
            said += line
        release.set()
        out, err = process.communicate(timeout=60)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert sendgrid.requests == 2, out + said + err  # nothing handed over after Ctrl-C
    return process.returncode, out, said + err


def assert_rerun_sends_the_rest(project: Path, store: Store, sendgrid: FakeSendGrid) -> None:  # noqa: F811
    rerun = subprocess.run(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (30, 0, 0)
    assert sorted(sendgrid.received_by().values()) == [1] * 30


def test_ctrl_c_stops_a_step_after_its_batch_and_the_next_run_sends_the_rest(
    welcome: Config,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
) -> None:
    configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    subscribers(30)

    code, out, err = interrupt_run_due(project, sendgrid)

    assert (code, err) == (130, f"\n{STOPPING}{INTERRUPTED}"), out
    assert out.startswith("welcome/01-thanks: sending to 30 reader(s) through sendgrid"), out
    assert "welcome/01-thanks: stopped (interrupted (Ctrl-C)); the next run-due resumes it" in out
    assert "Traceback" not in out
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    # The batch that was out when Ctrl-C came was answered and recorded; nothing in doubt.
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (20, 0, 10)

    assert_rerun_sends_the_rest(project, store, sendgrid)


def test_ctrl_c_leaves_a_scheduled_issue_queued_and_the_next_run_finishes_it(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
    secret: object,
) -> None:
    config = configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    subscribers(30)
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    plan = plan_send(config, project / SEED)
    schedule_issue(config, plan, due, zone="UTC", clock=lambda: due - dt.timedelta(days=1))

    code, out, err = interrupt_run_due(project, sendgrid)

    assert (code, err) == (130, f"\n{STOPPING}{INTERRUPTED}"), out
    slug = plan.slug
    assert out.startswith(f"{slug}: sending to 30 recipient(s) through sendgrid"), out
    assert f"{slug}: stopped (interrupted (Ctrl-C)); the next run-due resumes it" in out
    [entry] = list_schedule(config)
    assert (entry.state, entry.note) == (
        "queued",
        "stopped: interrupted (Ctrl-C); the next run-due resumes it",
    )
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (20, 0, 10)

    assert_rerun_sends_the_rest(project, store, sendgrid)
    [sent] = list_schedule(config, include_sent=True)
    assert sent.state == "sent"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_serve_stops_its_scheduled_send_after_the_batch_under_way(
    signum: signal.Signals,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
    secret: object,
    tmp_path: Path,
) -> None:
    config = configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    subscribers(30)
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    plan = plan_send(config, project / SEED)
    schedule_issue(config, plan, due, zone="UTC", clock=lambda: due - dt.timedelta(days=1))
    sendgrid.normal_next()
    release = sendgrid.hold_next()
    log = tmp_path / "serve.log"

    with serve_project(project, env=dict(os.environ), log=log) as server:
        try:
            sendgrid.wait_for_requests(2, timeout=60)  # the second batch is with SendGrid
            server.process.send_signal(signum)
            said = wait_for_line(log, SERVE_STOPPING, timeout=60)
            release.set()
            code = server.process.wait(timeout=60)  # not the third batch's time
        finally:
            release.set()

    said = log.read_text()
    assert code == 0, said
    # The reason names the signal: a stop request is no Ctrl-C.
    reason = "stopped (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"
    stopped = f"{plan.slug}: stopped ({reason}); the next run-due resumes it\n"
    assert said.index(SERVE_STOPPING) < said.index(stopped), said
    assert said.endswith(f"{stopped}Stopped.\n"), said
    assert "Traceback" not in said
    assert sendgrid.requests == 2, said  # nothing handed over after the signal
    [entry] = list_schedule(config)
    assert (entry.state, entry.note) == (
        "queued",
        f"stopped: {reason}; the next run-due resumes it",
    )
    [campaign] = campaign_rows.list_campaigns(store)
    assert campaign.last_error is not None
    assert campaign.last_error.startswith(f"{reason}: nothing more was handed over")
    counts = campaign_rows.state_counts(store, campaign.id)
    # The batch that was out when the signal came was answered and recorded.
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (20, 0, 10)

    assert_rerun_sends_the_rest(project, store, sendgrid)


def wait_for_line(log: Path, line: str, *, timeout: float) -> str:
    """The log once it holds ``line`` (a failure with the log if it never does)."""
    deadline = time.monotonic() + timeout
    while line not in (said := log.read_text()):
        assert time.monotonic() < deadline, f"never said {line!r}:\n{said}"
        time.sleep(0.05)
    return said
