"""Kill a real ``newsletter`` process (SIGKILL) in either phase of a subject test while a
batch is with the provider, then run it again: everyone gets exactly one subject, the
one the ledger says, and the batch that was out is ``unknown`` (never resent on its own).
On SQLite and PostgreSQL, through the local SendGrid stand-in."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule import run_due
from newsletter.send.schedule_queue import schedule_rest
from newsletter.send.sending import send_campaign
from newsletter.send.subject_test import find_test
from newsletter.store import Store
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import (
    SUBJECTS,
    by_variant,
    later,
    report_events,
    subjects_received,
    tracked_sendgrid,
    variants_in_ledger,
    with_variants,
)
from tests.send.test_crash import unknown_ids

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("secret", "on_both")]


def newsletter(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def killed_during_request(project: Path, sendgrid: FakeSendGrid, request: int, *args: str) -> None:
    """Start ``newsletter ARGS`` and kill it while its ``request``-th request is out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", *args],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sendgrid.wait_for_requests(request, timeout=60)
    finally:
        process.kill()
        process.wait()


def one_subject_each_as_the_ledger_says(
    store: Store, sendgrid: FakeSendGrid, readers: list[int], winner: str
) -> None:
    [campaign] = campaign_rows.list_campaigns(store)
    variants = variants_in_ledger(store, campaign.id)
    got = subjects_received(sendgrid)
    assert got == {
        f"reader{n}@example.org": [
            winner if variants[reader] is None else SUBJECTS[variants[reader] - 1]  # type: ignore[index]
        ]
        for n, reader in enumerate(readers)
    }


def test_a_send_killed_during_the_sample_resumes_and_nobody_gets_two_subjects(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid, sample="60%")
    with_variants(project)
    readers = subscribers(50)  # 30 in the sample: A 15 (10 + 5), B 15 (10 + 5)
    sendgrid.normal_next()
    sendgrid.slow_next(30)  # A's second batch: delivered, its answer never arrives

    killed_during_request(project, sendgrid, 2, "send", SEED, "--yes")
    resumed = newsletter(project, "send", SEED, "--yes")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "were in flight when an earlier run stopped" in resumed.stdout
    [campaign] = campaign_rows.list_campaigns(store)
    variants = variants_in_ledger(store, campaign.id)
    assert by_variant(variants) == {1: 15, 2: 15, None: 20}
    a_readers = sorted(reader for reader, variant in variants.items() if variant == 1)
    assert unknown_ids(store) == a_readers[10:]  # the batch that was out, and only it
    assert sum(sendgrid.received_by().values()) == 30
    b_readers = [reader for reader, variant in variants.items() if variant == 2]
    report_events(store, campaign.id, "click", b_readers[:4])

    [result] = run_due(config, clock=later(4.1))

    assert result.outcome == "sent", result.message
    one_subject_each_as_the_ledger_says(store, sendgrid, readers, SUBJECTS[1])
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (45, 5, 0)


def test_a_run_due_killed_while_sending_the_rest_resumes_with_the_same_winner(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid)
    with_variants(project)
    readers = subscribers(50)  # 10 in the sample (5 + 5), 40 in the rest (4 batches)
    # The sample went out five hours ago (the clock the send was given), so the rest is due.
    plan = plan_send(config, project / SEED)
    summary = send_campaign(config, plan, clock=later(-5))
    assert summary.rest_at is not None
    schedule_rest(config, plan, summary.rest_at)
    [campaign] = campaign_rows.list_campaigns(store)
    variants = variants_in_ledger(store, campaign.id)
    b_readers = [reader for reader, variant in variants.items() if variant == 2]
    report_events(store, campaign.id, "click", b_readers[:3])
    sendgrid.normal_next()  # the rest's first batch
    sendgrid.slow_next(30)  # the rest's second batch: delivered, the answer lost

    killed_during_request(project, sendgrid, 2 + 2, "run-due")  # the sample's 2, the rest's 2
    test = find_test(store, campaign.id)
    assert test is not None and (test.winner, test.decided_by) == (2, "measured")
    report_events(store, campaign.id, "click", [r for r, v in variants.items() if v == 1])
    rerun = newsletter(project, "run-due")
    again = newsletter(project, "run-due")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
    # A's later clicks changed nothing: the first decision stands.
    one_subject_each_as_the_ledger_says(store, sendgrid, readers, SUBJECTS[1])
    rest = sorted(reader for reader, variant in variants.items() if variant is None)
    assert unknown_ids(store) == rest[10:20]
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (40, 10, 0)
    assert dt.datetime.now(dt.UTC) > test.rest_at
