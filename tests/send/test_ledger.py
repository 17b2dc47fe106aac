"""The ledger and the lease, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from newsletter.cli import cli
from newsletter.errors import SendError
from newsletter.send import campaign_rows, delivery_events, ledger, ledger_batches
from newsletter.send.lease import Lease
from newsletter.store import Store, open_store_url, schema
from newsletter.store.schema import campaigns
from tests.send.conftest import SEED

TOPICS = ("research", "stories", "events")


@pytest.fixture
def db(database_url: str) -> Iterator[Store]:
    opened = open_store_url(database_url, TOPICS)
    yield opened
    opened.close()


def add_readers(store: Store, count: int, topics: tuple[str, ...] = ("research",)) -> list[int]:
    return [
        store.add(f"reader{n}@example.org", name=f"Reader {n}", topics=topics).id
        for n in range(count)
    ]


def start(store: Store, topics: tuple[str, ...] = ("research",)) -> campaign_rows.Campaign:
    return campaign_rows.start_campaign(
        store, slug="issue", issue_path="issues/issue.md", subject="S", topics=topics,
        provider="outbox",
    )  # fmt: skip


def test_the_snapshot_holds_the_active_subscribers_of_the_topics(db: Store) -> None:
    add_readers(db, 5)
    db.add("events@example.org", topics=["events"])
    db.add("pending@example.org", topics=["research"], status="pending")
    db.unsubscribe(db.find("reader4@example.org").id, source="cli")

    campaign = start(db)

    assert campaign.recipients == db.count_recipients(["research"]) == 4
    assert campaign_rows.state_counts(db, campaign.id)["pending"] == 4
    assert start(db).id == campaign.id  # starting it again finds the same campaign


def hand_over(book: ledger.Ledger, *, after: int, size: int) -> ledger_batches.Claim | None:
    claim = book.next_batch(after=after, size=size)
    if claim is not None:
        book.hand_over(claim)
    return claim


def test_a_batch_goes_pending_in_flight_then_sent_or_failed(db: Store) -> None:
    ids = add_readers(db, 5)
    campaign = start(db)
    book = ledger.Ledger(db, campaign.id)

    claim = book.next_batch(after=0, size=3)
    assert claim is not None
    assert [r.subscriber_id for r in claim.recipients] == ids[:3]
    assert campaign_rows.state_counts(db, campaign.id)["pending"] == 5  # prepared, not yet out
    book.hand_over(claim)
    assert campaign_rows.state_counts(db, campaign.id)["in_flight"] == 3
    book.record(claim, [("sent", "m1", None), ("failed", None, "550 no"), ("pending", None, "451")])

    claim = hand_over(book, after=claim.last_id, size=3)
    assert claim is not None
    book.record(claim, [("sent", "m2", None)] * 2)

    counts = campaign_rows.state_counts(db, campaign.id)
    assert (counts["sent"], counts["failed"], counts["pending"]) == (3, 1, 1)
    assert book.next_batch(after=ids[-1], size=3) is None
    assert campaign_rows.first_errors(db, campaign.id) == [
        ("reader1@example.org", "550 no"),
        ("reader2@example.org", "451"),
    ]


def test_a_recipient_gone_since_the_start_is_skipped_not_sent(db: Store) -> None:
    ids = add_readers(db, 3)
    campaign = start(db)
    db.unsubscribe(ids[0], source="web")
    db.forget("reader1@example.org")  # erased: the subscriber row is gone

    claim = ledger.Ledger(db, campaign.id).next_batch(after=0, size=10)

    assert claim is not None
    assert [r.subscriber_id for r in claim.recipients] == [ids[2]]
    assert claim.skipped == 2
    assert campaign_rows.state_counts(db, campaign.id)["skipped"] == 2


def test_batches_take_size_recipients_in_id_order_across_gaps_and_erasures(db: Store) -> None:
    # Recipients interleaved with people of another topic, who are not in the campaign;
    # one recipient erased after the start, at a batch boundary.
    wanted = []
    for n in range(10):
        wanted.append(db.add(f"r{n}@example.org", topics=["research"]).id)
        db.add(f"e{n}@example.org", topics=["events"])
    campaign = start(db)
    db.forget("r3@example.org")
    book = ledger.Ledger(db, campaign.id)
    book.refresh_statistics()

    batches, skipped, after = [], 0, 0
    while (claim := hand_over(book, after=after, size=3)) is not None:
        batches.append([r.subscriber_id for r in claim.recipients])
        skipped += claim.skipped
        after = claim.last_id

    left = [i for i in wanted if i != wanted[3]]
    assert batches == [wanted[0:3], left[3:5], left[5:8], left[8:9]]
    assert skipped == 1


def test_a_batch_in_flight_when_the_sender_died_becomes_unknown(db: Store) -> None:
    add_readers(db, 4)
    campaign = start(db)
    book = ledger.Ledger(db, campaign.id)
    hand_over(book, after=0, size=2)  # ... and the process is killed here
    book.next_batch(after=2, size=2)  # the next batch, prepared but not handed over

    assert book.recover() == 2
    assert campaign_rows.state_counts(db, campaign.id)["unknown"] == 2
    assert book.requeue_unknown() == 2  # --retry-unknown
    assert campaign_rows.state_counts(db, campaign.id)["pending"] == 4


def test_delivery_events_settle_unknown_recipients(db: Store) -> None:
    ids = add_readers(db, 4)
    campaign = start(db)
    book = ledger.Ledger(db, campaign.id)
    hand_over(book, after=0, size=4)
    book.recover()

    def event(subscriber_id: int, name: str) -> bool:
        return delivery_events.apply_delivery_event(
            db, campaign_id=campaign.id, subscriber_id=subscriber_id, event=name,
            message_id="sg-1.filter",
        )  # fmt: skip

    assert event(ids[0], "delivered") is True
    assert event(ids[1], "bounce") is True
    assert event(ids[2], "open") is False
    assert event(ids[0], "processed") is False  # already sent: nothing changes
    counts = campaign_rows.state_counts(db, campaign.id)
    assert (counts["sent"], counts["failed"], counts["unknown"]) == (1, 1, 2)


def test_an_event_for_a_requeued_recipient_settles_it_before_it_is_sent_again(db: Store) -> None:
    ids = add_readers(db, 1)
    campaign = start(db)
    book = ledger.Ledger(db, campaign.id)
    hand_over(book, after=0, size=1)
    book.recover()
    book.requeue_unknown()

    assert delivery_events.apply_delivery_event(
        db, campaign_id=campaign.id, subscriber_id=ids[0], event="delivered", message_id=None
    )
    assert book.next_batch(after=0, size=1) is None  # nothing left to send


def test_only_one_lease_holder_at_a_time(db: Store) -> None:
    add_readers(db, 1)
    campaign = start(db)

    with Lease(db, campaign), pytest.raises(SendError, match="is being sent by process"):
        Lease(db, campaign).acquire()
    with Lease(db, campaign):  # released: the next run may go
        pass


def test_of_many_senders_starting_at_once_exactly_one_gets_the_lease(db: Store) -> None:
    add_readers(db, 1)
    campaign = start(db)
    leases = [Lease(db, campaign) for _ in range(6)]
    barrier = threading.Barrier(len(leases))
    winners: list[Lease] = []

    def race(lease: Lease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            winners.append(lease)
        except SendError:
            pass

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1
    winners[0].release()


def test_the_lease_of_a_dead_process_is_taken_over_at_once(db: Store) -> None:
    add_readers(db, 1)
    campaign = start(db)
    host = Lease(db, campaign).owner.split(":")[0]
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as sender:
        set_lease(db, campaign.id, f"{host}:{sender.pid}:abcd", seconds=600)
        with pytest.raises(SendError, match=f"is being sent by process {sender.pid} on {host}"):
            Lease(db, campaign).acquire()  # while that process lives, its lease holds
    # The process has exited (and been waited for); its lease still has ten minutes.

    lease = Lease(db, campaign)
    lease.acquire()

    assert lease_owner(db, campaign.id) == lease.owner
    lease.release()
    assert lease_owner(db, campaign.id) is None


def test_a_lease_from_another_host_holds_until_it_expires(db: Store) -> None:
    add_readers(db, 1)
    campaign = start(db)

    set_lease(db, campaign.id, "elsewhere:1234:abcd", seconds=600)
    with pytest.raises(SendError, match="is being sent by process 1234 on elsewhere"):
        Lease(db, campaign).acquire()

    set_lease(db, campaign.id, "elsewhere:1234:abcd", seconds=-1)
    with Lease(db, campaign):
        pass


def lease_owner(store: Store, campaign_id: int) -> str | None:
    with store.engine.connect() as connection:
        return connection.scalar(
            select(campaigns.c.lease_owner).where(campaigns.c.id == campaign_id)
        )


def set_lease(store: Store, campaign_id: int, owner: str, *, seconds: float) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(
                lease_owner=owner,
                lease_expires_at=campaign_rows.now() + dt.timedelta(seconds=seconds),
            )
        )


def test_a_whole_send_on_this_database(
    database_url: str, runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    store = open_store_url(database_url, TOPICS)
    add_readers(store, 7)
    store.close()
    (project / "newsletter.yaml").write_text(
        (project / "newsletter.yaml").read_text() + "sending:\n  batch_size: 3\n"
    )

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 7, failed 0" in result.output
    assert again.exit_code == 0 and "Nothing to send" in again.output
    assert len(list((project / "outbox" / "new").iterdir())) == 7


def test_sent_messages_count_against_the_caps_of_later_runs(db: Store) -> None:
    add_readers(db, 3)
    campaign = start(db)
    book = ledger.Ledger(db, campaign.id)
    claim = hand_over(book, after=0, size=3)
    assert claim is not None
    book.record(claim, [("sent", "m", None)] * 3)

    [(at, count)] = campaign_rows.sent_since(db, campaign_rows.now() - dt.timedelta(hours=1))

    assert count == 3
    assert campaign_rows.now() - at < dt.timedelta(minutes=1)


def ledger_rows(store: Store, campaign_id: int) -> dict[int, tuple[object, ...]]:
    """subscriber id -> (state, message id, error, sent at set, updated at) of the campaign."""
    query = select(
        schema.ledger.c.subscriber_id,
        schema.ledger.c.state,
        schema.ledger.c.message_id,
        schema.ledger.c.error,
        schema.ledger.c.sent_at,
        schema.ledger.c.updated_at,
    ).where(schema.ledger.c.campaign_id == campaign_id)
    with store.engine.connect() as connection:
        return {
            row[0]: (row[1], row[2], row[3], row[4] is not None and row[4] == row[5], row[5])
            for row in connection.execute(query)
        }


@pytest.mark.parametrize("kinds", [1, 3, 12], ids=["one-outcome", "few", "many"])
def test_each_recipient_of_a_batch_keeps_its_own_outcome_and_message_id(
    db: Store, kinds: int
) -> None:
    # Postmark's batches: a message id per recipient, now and then a refusal among them
    # (few kinds of outcome: written per kind; many: row by row). Either way each row
    # gets its state, id and error, sent_at only when sent, and a row the delivery log
    # settled already (a per-message provider's report) is left as it was.
    ids = add_readers(db, 24)
    campaign = start(db)
    book = ledger.Ledger(db, campaign.id)
    claim = hand_over(book, after=0, size=24)
    assert claim is not None
    settled = ledger_batches.Outcome(ids[5], "failed", None, "550 reported by the log")
    book.settle([settled])
    before = ledger_rows(db, campaign.id)[ids[5]]
    outcomes: list[tuple[str, str | None, str | None]] = [
        ("sent", f"id-{n}", None)
        if n % kinds == 0
        else ("failed" if n % 2 else "unknown", None, f"refusal {n % kinds}")
        for n in range(24)
    ]
    outcomes[5] = ("sent", "not-this-one", None)

    book.record(claim, outcomes, handed_over=("postmark", 23))

    rows = ledger_rows(db, campaign.id)
    assert rows[ids[5]] == before
    for n, subscriber_id in enumerate(ids):
        if n == 5:
            continue
        state, message_id, error = outcomes[n]
        assert rows[subscriber_id][:4] == (state, message_id, error, state == "sent"), n
    assert len({rows[s][4] for n, s in enumerate(ids) if n != 5}) == 1  # one time for all
    assert book.count("in_flight") == 0
