"""Readers who leave while a campaign runs are never handed over (issue 11, item 1).

The next batch is read while the previous one is with the provider; whoever
unsubscribes (or bounces, or is erased) before their batch is handed over must end
``skipped``, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.send import campaign_rows, ledger, ledger_batches
from newsletter.send.ledger_log import LedgerLog
from newsletter.send.plan import plan_send
from newsletter.send.run_summary import SendSummary
from newsletter.send.sending import send_campaign
from newsletter.store import Store, open_store
from newsletter.store.schema import ledger as ledger_rows
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED

# Every wait on the sender's thread: long enough for a machine under heavy load, and
# within pytest-timeout's two minutes.
HOLD_LIMIT = 60.0


@pytest.fixture
def shared_store(
    database_url: str, config: Config, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    opened = open_store(config)
    yield opened
    opened.close()


def add_readers(store: Store, count: int) -> list[int]:
    return [
        store.add(f"reader{n}@example.org", name=f"Reader {n}", topics=["research"]).id
        for n in range(count)
    ]


def in_background(config: Config, project: Path) -> tuple[threading.Thread, list[SendSummary]]:
    summaries: list[SendSummary] = []
    plan = plan_send(config, project / SEED)
    thread = threading.Thread(target=lambda: summaries.append(send_campaign(config, plan)))
    thread.start()
    return thread, summaries


def skipped(store: Store) -> set[int]:
    with store.engine.connect() as connection:
        return set(
            connection.execute(
                ledger_rows.select()
                .with_only_columns(ledger_rows.c.subscriber_id)
                .where(ledger_rows.c.state == "skipped")
            ).scalars()
        )


def test_who_leaves_while_a_batch_is_out_is_skipped_not_mailed(
    project: Path,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    shared_store: Store,
    secret: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    ids = add_readers(shared_store, 40)
    batches_read = watch_batch_reads(monkeypatch)
    release = sendgrid.hold_next()  # the first batch stays out until the readers have left
    thread, summaries = in_background(config, project)
    try:
        sendgrid.wait_for_requests(1, timeout=HOLD_LIMIT)
        wait_until(lambda: len(batches_read) == 2)  # the second batch is read meanwhile
        # Readers of the batch already read leave, and one of a later batch; each way out
        # counts.
        shared_store.unsubscribe(ids[11], source="web")
        shared_store.mark(ids[12], "bounced", reason="550")
        shared_store.forget("reader13@example.org")
        shared_store.unsubscribe(ids[25], source="web")
    finally:
        release.set()
        thread.join(HOLD_LIMIT)

    assert not thread.is_alive()
    assert [claim.last_id for claim in batches_read[:2]] == [ids[9], ids[19]]
    assert {ids[11], ids[12], ids[13]} <= {r.subscriber_id for r in batches_read[1].recipients}
    received = sendgrid.received_by()
    for n in (11, 12, 13, 25):
        assert received[f"reader{n}@example.org"] == 0
    assert sum(received.values()) == 36
    counts = campaign_rows.state_counts(shared_store, 1)
    assert (counts["sent"], counts["skipped"]) == (36, 4)
    assert {ids[11], ids[12], ids[13], ids[25]} == skipped(shared_store)
    assert summaries[0].skipped == 4


def watch_batch_reads(monkeypatch: pytest.MonkeyPatch) -> list[ledger_batches.Claim]:
    """Every batch the sender reads (the real read, recorded as it returns)."""
    read: list[ledger_batches.Claim] = []
    real = ledger.Ledger.next_batch

    def next_batch(self: ledger.Ledger, *, after: int, size: int) -> ledger_batches.Claim | None:
        claim = real(self, after=after, size=size)
        if claim is not None:
            read.append(claim)
        return claim

    monkeypatch.setattr(ledger.Ledger, "next_batch", next_batch)
    return read


def wait_until(condition: Callable[[], bool], timeout: float = HOLD_LIMIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def hold_before(
    monkeypatch: pytest.MonkeyPatch, index: int
) -> tuple[threading.Event, threading.Event]:
    """A per-message provider stops before handing message ``index`` over until released.

    Returns (reached, release): ``reached`` is set once the messages before it are out."""
    reached, release = threading.Event(), threading.Event()
    real = LedgerLog.starting

    def starting(self: LedgerLog, at: int, wait: float = 0.0) -> bool:
        if at == index:
            reached.set()
            release.wait(HOLD_LIMIT)
        return real(self, at, wait)

    monkeypatch.setattr(LedgerLog, "starting", starting)
    return reached, release


def test_who_leaves_during_a_per_message_batch_is_skipped(
    project: Path,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = configure(provider="outbox", sending={"batch_size": 30})
    ids = subscribers(30)
    new = config.outbox_dir / "new"
    reached, release = hold_before(monkeypatch, 1)
    thread, summaries = in_background(config, project)
    try:
        assert reached.wait(HOLD_LIMIT), "the sender never handed its first message over"
        assert len(list(new.iterdir())) == 1  # the batch is out, reader 20 not yet handed over
        store.unsubscribe(ids[20], source="web")
    finally:
        release.set()
        thread.join(HOLD_LIMIT)

    assert not thread.is_alive()
    assert len(list(new.iterdir())) == 29
    assert skipped(store) == {ids[20]}
    assert summaries[0].skipped == 1
