"""Ctrl-C (SIGINT) to a real ``newsletter run-due`` while a due step is with the
provider: one line saying how to go on, exit 130, no traceback; the next run resumes
and nobody gets the step twice.

The SendGrid stand-in holds the second request without answering: the signal comes
while the sender waits for that answer, known from the stand-in, never from a sleep.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import sendgrid  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("on_both")]


def test_ctrl_c_stops_run_due_with_one_line_and_the_next_run_resumes(
    welcome: Config,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
) -> None:
    configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    subscribers(30)
    sendgrid.normal_next()
    release = sendgrid.hold_next()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sendgrid.wait_for_requests(2, timeout=60)  # the second batch is with the provider
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert (process.returncode, err) == (130, "\ninterrupted; run it again to resume\n"), out
    assert out.startswith("welcome/01-thanks: sending to 30 reader(s) through sendgrid"), out
    assert "Traceback" not in out

    rerun = subprocess.run(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    # The batch that was out when Ctrl-C came may have arrived: unknown, never resent.
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (20, 10, 0)
    assert all(copies == 1 for copies in sendgrid.received_by().values())
    assert len(sendgrid.received_by()) >= 20
