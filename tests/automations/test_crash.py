"""Kill a real ``newsletter run-due`` (SIGKILL) while a due step is with the provider.

The fake SendGrid holds the third request without answering; the test kills the
process right then and runs ``run-due`` again: every reader gets the welcome mail
exactly once, and the batch that was out is ``unknown`` (never resent on its own).
"""

from __future__ import annotations

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
from tests.send.test_crash import unknown_ids

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("on_both")]


def test_a_run_due_killed_mid_step_resumes_and_everyone_gets_one_copy(
    welcome: Config,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
) -> None:
    configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    readers = subscribers(50)
    sendgrid.normal_next(times=2)
    sendgrid.slow_next(30)  # delivered, but the answer never reaches the sender
    killed = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sendgrid.wait_for_requests(3, timeout=60)
    finally:
        killed.kill()
        killed.wait()

    rerun = subprocess.run(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    again = subprocess.run(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(50)}
    assert unknown_ids(store) == readers[20:30]  # exactly the batch that was out
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (40, 10, 0)
    assert again.stdout == ""  # nobody left to send to
