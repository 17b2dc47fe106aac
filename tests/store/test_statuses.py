"""Who may move from which status to which (``store/statuses.py``), through the store.

Every path (web app, CLI, webhook, mailbox, import, SMTP refusals) leaves through
``change_statuses``; its own suites prove each path, this one the rule itself.
"""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.errors import StoreError
from newsletter.models import Subscriber
from newsletter.store import Store
from newsletter.store.statuses import StatusChange

STRENGTH = {"pending": 0, "active": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


def subscriber_in(store: Store, status: str, email: str = "ann@example.org") -> Subscriber:
    subscriber = store.add(email, status="pending" if status == "pending" else "active")
    if status == "unsubscribed":
        store.unsubscribe(subscriber.id, source="web")
    elif status in ("bounced", "complained"):
        store.mark(subscriber.id, status)
    return subscriber


def history(store: Store, email: str = "ann@example.org") -> list[str]:
    return [event["event"] for event in store.describe(email)["events"]]


@pytest.mark.parametrize("before", list(STRENGTH))
@pytest.mark.parametrize("reported", ["unsubscribed", "bounced", "complained"])
def test_a_report_only_ever_strengthens_a_status(store: Store, before: str, reported: str) -> None:
    subscriber = subscriber_in(store, before)
    events_before = history(store)

    applied = store.change_statuses([StatusChange(subscriber.id, reported, "test", "why")])

    takes_effect = STRENGTH[reported] > STRENGTH[before]
    assert store.get(subscriber.id).status == (reported if takes_effect else before)  # type: ignore[union-attr]
    assert [change.to for change in applied] == ([reported] if takes_effect else [])
    assert history(store) == events_before + ([reported] if takes_effect else [])


def test_reports_in_one_call_end_at_the_strongest_and_each_is_in_the_history(
    store: Store,
) -> None:
    ann = subscriber_in(store, "active")
    bob = subscriber_in(store, "complained", "bob@example.org")

    applied = store.change_statuses(
        [
            StatusChange(ann.id, "complained", "mailbox", "abuse report", campaign_id=3),
            StatusChange(ann.id, "bounced", "mailbox", "550 no such user"),
            StatusChange(ann.id, "bounced", "mailbox", "a retried report"),  # counts once
            StatusChange(ann.id, "unsubscribed", "mailto"),
            StatusChange(bob.id, "bounced", "mailbox", "550 no such user"),
        ]
    )

    assert [(change.subscriber_id, change.to) for change in applied] == [
        (ann.id, "unsubscribed"),
        (ann.id, "bounced"),
        (ann.id, "complained"),
    ]
    record = store.describe("ann@example.org")
    assert record["status"] == "complained"
    assert [(e["event"], e["source"], e["detail"]) for e in record["events"]] == [
        ("unsubscribed", "mailto", {}),
        ("bounced", "mailbox", {"reason": "550 no such user"}),
        ("complained", "mailbox", {"reason": "abuse report", "campaign_id": 3}),
    ]
    assert (store.get(bob.id).status, history(store, "bob@example.org")) == (  # type: ignore[union-attr]
        "complained",
        ["complained"],
    )


def test_each_unsubscribe_keeps_its_own_time_source_reason_and_campaign(store: Store) -> None:
    """As an import does: every person's own opt-out time and reason, in one call."""
    first = dt.datetime(2024, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    later = dt.datetime(2024, 6, 7, 8, 9, 10, tzinfo=dt.UTC)
    ann, bob, cy = (
        subscriber_in(store, "active", f"{n}@example.org") for n in ("ann", "bob", "cy")
    )
    dee = subscriber_in(store, "complained", "dee@example.org")

    store.change_statuses(
        [
            StatusChange(ann.id, "unsubscribed", "import", "moved", at=first),
            StatusChange(bob.id, "unsubscribed", "import", "too many", 7, later, "mailchimp"),
            StatusChange(cy.id, "unsubscribed", "import", "too many", 7, later, "mailchimp"),
            StatusChange(dee.id, "unsubscribed", "import", "gone", at=first),
        ]
    )

    def record(email: str) -> tuple[object, ...]:
        found = store.describe(email)
        keys = ("status", "unsubscribed_at", "unsubscribe_source", "unsubscribe_reason")
        return (*(found[key] for key in keys), found["unsubscribe_campaign_id"])

    assert record("ann@example.org") == (
        "unsubscribed", "2024-02-03T04:05:06Z", "import", "moved", None,
    )  # fmt: skip
    assert record("bob@example.org") == record("cy@example.org") == (
        "unsubscribed", "2024-06-07T08:09:10Z", "mailchimp", "too many", 7,
    )  # fmt: skip
    assert record("dee@example.org") == ("complained", None, None, None, None)
    assert store.describe("bob@example.org")["events"][-1]["at"] == "2024-06-07T08:09:10Z"


def test_nothing_leads_back_to_active_but_the_persons_own_act(store: Store) -> None:
    with pytest.raises(StoreError, match="can only leave as unsubscribed, bounced, complained"):
        store.change_statuses([StatusChange(1, "active", "import")])
    gone = subscriber_in(store, "bounced")
    assert store.resubscribe(gone.id, source="web") is False
    assert store.confirm(gone.id, ip=None) is False
    assert store.get(gone.id).status == "bounced"  # type: ignore[union-attr]
