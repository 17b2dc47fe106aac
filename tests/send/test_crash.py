"""Kill a real ``newsletter send`` mid-campaign (SIGKILL) and run it again.

The sender is a subprocess talking to the fake SendGrid over HTTP; the fake holds
the third request without answering, the test kills the sender right then, and the
messages are counted where they arrive.
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
from newsletter.store.schema import ledger as ledger_rows
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED

pytestmark = pytest.mark.slow


def newsletter(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "send", SEED, "--yes", *args],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def kill_during_third_request(project: Path, sendgrid: FakeSendGrid) -> None:
    sender = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", SEED, "--yes"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sendgrid.wait_for_requests(3, timeout=60)
    finally:
        sender.kill()  # SIGKILL: no cleanup, no finally blocks, no lease release
        sender.wait()


def unknown_ids(store: Store) -> list[int]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            ledger_rows.select().where(ledger_rows.c.state == "unknown")
        ).all()
    return sorted(row.subscriber_id for row in rows)


@pytest.fixture
def campaign_of_50(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    secret: object,
) -> list[int]:
    configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    return subscribers(50)


def test_after_sigkill_a_rerun_resumes_and_everyone_gets_exactly_one_copy(
    project: Path, sendgrid: FakeSendGrid, campaign_of_50: list[int], store: Store
) -> None:
    sendgrid.normal_next(times=2)
    sendgrid.slow_next(30)  # delivered, but the answer never reaches the sender
    kill_during_third_request(project, sendgrid)

    rerun = newsletter(project)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(50)}
    assert unknown_ids(store) == campaign_of_50[20:30]  # exactly the batch in flight
    counts = campaign_rows.state_counts(store, 1)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (40, 10, 0)
    assert (
        "10 recipient(s) were in flight when an earlier run stopped: they are 'unknown' "
        "and were not sent again." in rerun.stdout
    )


def test_retry_unknown_resends_a_batch_that_never_arrived(
    project: Path, sendgrid: FakeSendGrid, campaign_of_50: list[int], store: Store
) -> None:
    sendgrid.normal_next(times=2)
    sendgrid.slow_next(30, deliver=False)  # this time the batch is lost with the sender
    kill_during_third_request(project, sendgrid)

    first = newsletter(project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(sendgrid.received_by()) == 40
    assert unknown_ids(store) == campaign_of_50[20:30]

    second = newsletter(project, "--retry-unknown")

    assert second.returncode == 0, second.stdout + second.stderr
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(50)}
    assert campaign_rows.state_counts(store, 1)["sent"] == 50
