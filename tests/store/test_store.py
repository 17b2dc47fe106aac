"""The Store API, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from newsletter.errors import StoreError
from newsletter.models import Subscriber
from newsletter.store import Store, open_store_url


def test_add_normalises_and_returns_the_subscriber(store: Store) -> None:
    added = store.add(" Ann.Lee@Example.ORG ", name="Ann Lee", topics=["Research", "events"])

    assert added == Subscriber(
        id=added.id,
        email="Ann.Lee@example.org",
        name="Ann Lee",
        status="active",
        topics=("research", "events"),
    )
    assert store.get(added.id) == Subscriber(
        added.id, "Ann.Lee@example.org", "Ann Lee", "active", ("research", "events")
    )


def test_addresses_are_unique_whatever_their_case(store: Store) -> None:
    first = store.add("ann@example.org", topics=["research"])
    again = store.add("ANN@EXAMPLE.ORG", name="Ann", topics=["stories"])

    assert again.id == first.id
    assert again.topics == ("research", "stories")
    assert again.name == "Ann"
    assert store.find("Ann@Example.org") == again
    assert store.count_recipients(None) == 1


def test_add_or_merge_says_what_happened(store: Store) -> None:
    assert store.add_or_merge("ann@example.org", topics=["research"]).outcome == "added"
    assert store.add_or_merge("ann@example.org", topics=["research"]).outcome == "unchanged"
    assert store.add_or_merge("ann@example.org", topics=["events"]).outcome == "updated"


def test_add_rejects_an_invalid_address(store: Store) -> None:
    with pytest.raises(StoreError, match=r"'ann@example' is not a valid email address: "):
        store.add("ann@example")


def test_add_rejects_an_unknown_topic_and_lists_the_known_ones(store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        store.add("ann@example.org", topics=["recipes"])
    assert str(raised.value) == (
        "unknown topic 'recipes'; known topics: research, stories, events "
        "(add new topics under 'topics:' in newsletter.yaml)"
    )
    assert store.find("ann@example.org") is None


@pytest.mark.parametrize("status", ["unsubscribed", "bounced", "complained"])
def test_a_suppressed_address_is_never_reactivated_by_add(store: Store, status: str) -> None:
    subscriber = store.add("ann@example.org")
    if status == "unsubscribed":
        store.unsubscribe(subscriber.id, source="web")
    else:
        store.mark(subscriber.id, status)

    with pytest.raises(StoreError, match=f"ann@example.org is {status}; a suppressed address"):
        store.add("Ann@example.org")
    assert store.find("ann@example.org").status == status  # type: ignore[union-attr]


def test_a_pending_address_added_again_stays_pending(store: Store) -> None:
    pending = store.add("ann@example.org", status="pending")
    assert store.add("ann@example.org", status="active").status == "pending"
    assert store.get(pending.id).status == "pending"  # type: ignore[union-attr]


def test_confirm_activates_a_pending_subscriber_once(store: Store) -> None:
    pending = store.add("ann@example.org", status="pending", source="web", ip="192.0.2.1")

    assert store.confirm(pending.id, ip="192.0.2.7") is True
    assert store.confirm(pending.id, ip="192.0.2.7") is False
    record = store.describe("ann@example.org")
    assert record["status"] == "active"
    assert record["subscribed_ip"] == "192.0.2.1"
    assert record["confirmed_ip"] == "192.0.2.7"
    assert record["confirmed_at"] is not None


def test_unsubscribe_is_recorded_once_with_its_campaign(store: Store) -> None:
    subscriber = store.add("ann@example.org")

    assert store.unsubscribe(subscriber.id, source="one-click", reason="too many", campaign_id=7)
    assert not store.unsubscribe(subscriber.id, source="web")

    record = store.describe("ann@example.org")
    assert record["status"] == "unsubscribed"
    assert record["unsubscribe_source"] == "one-click"
    assert record["unsubscribe_reason"] == "too many"
    assert record["unsubscribe_campaign_id"] == 7
    assert [event["event"] for event in record["events"]] == ["unsubscribed"]
    assert store.is_suppressed("ANN@example.org")
    assert list(store.recipients(None)) == []


def test_resubscribe_only_brings_back_the_unsubscribed(store: Store) -> None:
    ann = store.add("ann@example.org")
    bob = store.add("bob@example.org")
    store.unsubscribe(ann.id, source="web")
    store.mark(bob.id, "bounced", reason="550 no such user")

    assert store.resubscribe(ann.id, source="web", ip="192.0.2.9") is True
    assert store.resubscribe(bob.id, source="web") is False
    assert store.get(ann.id).status == "active"  # type: ignore[union-attr]
    assert store.describe("ann@example.org")["unsubscribed_at"] is None


def test_a_complaint_is_never_downgraded_to_a_bounce(store: Store) -> None:
    subscriber = store.add("ann@example.org")

    assert store.mark(subscriber.id, "complained") is True
    assert store.mark(subscriber.id, "bounced") is False
    assert store.get(subscriber.id).status == "complained"  # type: ignore[union-attr]


def test_mark_refuses_other_statuses(store: Store) -> None:
    subscriber = store.add("ann@example.org")
    with pytest.raises(StoreError, match="mark\\(\\) takes 'bounced' or 'complained'"):
        store.mark(subscriber.id, "active")


def test_update_preferences_replaces_topics_and_name(store: Store) -> None:
    subscriber = store.add("ann@example.org", name="Ann", topics=["research", "events"])

    updated = store.update_preferences(subscriber.id, name="Ann Lee", topics=["stories"])

    assert updated.name == "Ann Lee"
    assert updated.topics == ("stories",)
    assert store.get(subscriber.id) == updated
    assert store.describe("ann@example.org")["events"][-1]["detail"] == {
        "name_changed": True,
        "topics": ["stories"],
    }


def test_forget_erases_everything_and_keeps_the_address_suppressed(store: Store) -> None:
    subscriber = store.add("Ann@example.org", name="Ann", attributes={"city": "Lyon"})
    store.unsubscribe(subscriber.id, source="web")

    assert store.forget("ann@EXAMPLE.org") is True

    assert store.get(subscriber.id) is None
    assert store.find("ann@example.org") is None
    assert store.is_suppressed("ANN@example.org")
    assert store.describe("ann@example.org")["erased"] is True
    with pytest.raises(StoreError, match="was erased at the person's request"):
        store.add("ann@example.org")
    assert store.forget("ann@example.org") is False


def test_an_erased_person_may_sign_up_again_and_only_confirming_lifts_the_erasure(
    store: Store,
) -> None:
    store.add("ann@example.org")
    store.forget("ann@example.org")
    with pytest.raises(StoreError, match="was erased at the person's request"):
        store.add("ann@example.org", status="pending")  # the editor cannot bring her back
    with pytest.raises(StoreError, match="'pending' until it is confirmed"):
        store.add("ann@example.org", own_request=True)

    again = store.add("ann@example.org", status="pending", own_request=True)

    assert store.is_suppressed("ann@example.org")  # not mailable before she confirms
    assert store.confirm(again.id, ip="192.0.2.1")
    assert not store.is_suppressed("ann@example.org")
    assert store.find("ann@example.org").status == "active"
    assert [s.email for s in store.recipients(None)] == ["ann@example.org"]


def test_recipients_are_the_active_subscribers_of_any_topic_in_id_order(store: Store) -> None:
    ann = store.add("ann@example.org", topics=["research"])
    bob = store.add("bob@example.org", topics=["stories", "events"])
    cat = store.add("cat@example.org", topics=["events"])
    store.add("dan@example.org", topics=["research"], status="pending")
    gone = store.add("eve@example.org", topics=["research"])
    store.unsubscribe(gone.id, source="web")

    assert [s.email for s in store.recipients(None)] == [ann.email, bob.email, cat.email]
    assert [s.id for s in store.recipients(["research", "stories"])] == [ann.id, bob.id]
    assert [s.id for s in store.recipients(["events"])] == [bob.id, cat.id]
    assert store.count_recipients(["events"]) == 2
    assert store.count_recipients(None) == 3


def test_recipients_stream_across_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.store.store_base.PAGE_SIZE", 3)
    for number in range(10):
        store.add(f"reader{number}@example.org", topics=["stories"])

    emails = [s.email for s in store.recipients(["stories"])]

    assert emails == [f"reader{number}@example.org" for number in range(10)]


def test_recipients_refuse_an_unknown_topic(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown topic 'recipes'"):
        list(store.recipients(["recipes"]))


def test_counts_by_status_and_topic(store: Store) -> None:
    store.add("ann@example.org", topics=["research"])
    store.add("bob@example.org", topics=["research", "events"], status="pending")

    assert store.counts() == {
        "status": {"pending": 1, "active": 1, "unsubscribed": 0, "bounced": 0, "complained": 0},
        "topics": {"research": 1, "stories": 0, "events": 0},
    }


def test_describe_an_unknown_address(store: Store) -> None:
    with pytest.raises(StoreError) as raised:
        store.describe("nobody@example.org")
    assert str(raised.value) == "no subscriber with address nobody@example.org"


def test_concurrent_adds_of_one_address_make_one_subscriber(store: Store) -> None:
    results: list[Subscriber] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def add(topic: str) -> None:
        start.wait()
        try:
            results.append(store.add("ann@example.org", topics=[topic]))
        except BaseException as error:  # reported in the test's own thread
            errors.append(error)

    threads = [threading.Thread(target=add, args=(t,)) for t in ("research", "events") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({subscriber.id for subscriber in results}) == 1
    assert store.find("ann@example.org").topics == ("research", "events")  # type: ignore[union-attr]


def test_concurrent_confirmations_confirm_once(store: Store) -> None:
    pending = store.add("ann@example.org", status="pending")
    start = threading.Barrier(4)
    outcomes: list[bool] = []

    def confirm() -> None:
        start.wait()
        outcomes.append(store.confirm(pending.id, ip="192.0.2.1"))

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False, False, False, True]
    assert [e["event"] for e in store.describe("ann@example.org")["events"]] == ["confirmed"]


def test_sqlite_is_set_up_for_several_processes(tmp_path: Path) -> None:
    store = open_store_url(f"sqlite:///{tmp_path / 'news.db'}", ["research"])
    with store.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    store.close()
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
    }
