"""Provider events (SendGrid's Event Webhook) applied to campaign ledgers, many at once.

The set-based twin of :func:`newsletter.ledger.apply_delivery_event`: a webhook batch
holds thousands of events, and one statement per event kind (executemany, which
psycopg pipelines and SQLite runs in process) keeps a batch of SendGrid's maximum
size well within a worker's timeout. It works on a connection the caller holds, so
the events' effects commit in the same transaction as the record that they were seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, exists, or_, update

from newsletter.ledger import ACCEPTED_EVENTS, REFUSED_EVENTS
from newsletter.store.schema import campaigns, ledger


class DeliveryEvent(NamedTuple):
    campaign_id: int
    subscriber_id: int
    event: str  # processed, delivered, deferred, bounce, dropped
    message_id: str | None


def apply_delivery_events(
    connection: Connection, events: Sequence[DeliveryEvent], *, when: dt.datetime
) -> None:
    """Settle ledger rows from provider events, as ``apply_delivery_event`` does one.

    Accepted events are applied before refusals, so a ``processed`` and a ``bounce`` of
    one message end ``failed`` whatever order they came in.
    """
    row = and_(
        ledger.c.campaign_id == bindparam("campaign"),
        ledger.c.subscriber_id == bindparam("subscriber"),
    )
    handed_over = (ledger.c.state == "pending") & (ledger.c.attempts > 0)
    # One update per row: a message's processed and delivered events settle it alike.
    accepted = _keys(event for event in events if event.event in ACCEPTED_EVENTS)
    refused = [
        {"campaign": e.campaign_id, "subscriber": e.subscriber_id, "reason": _refusal(e.event)}
        for e in events
        if e.event in REFUSED_EVENTS
    ]
    if accepted:
        connection.execute(
            update(ledger)
            .where(row, _state_is("unknown", "in_flight") | handed_over)
            .values(state="sent", sent_at=when, error=None, updated_at=when),
            accepted,
        )
    if refused:
        connection.execute(
            update(ledger)
            .where(row, _state_is("unknown", "in_flight", "sent") | handed_over)
            .values(state="failed", error=bindparam("reason"), updated_at=when),
            refused,
        )
    first_ids: dict[tuple[int, int], str] = {}
    for e in events:
        if e.message_id and e.event in ACCEPTED_EVENTS | REFUSED_EVENTS:
            first_ids.setdefault((e.campaign_id, e.subscriber_id), e.message_id)
    message_ids = [
        {"campaign": campaign, "subscriber": subscriber, "found": found}
        for (campaign, subscriber), found in first_ids.items()
    ]
    if message_ids:
        connection.execute(
            update(ledger)
            .where(row, ledger.c.message_id.is_(None))
            .values(message_id=bindparam("found")),
            message_ids,
        )
    _finish_settled(connection, {event.campaign_id for event in events}, when)


def _state_is(*states: str) -> Any:
    # OR of equalities, not IN: an expanding IN cannot be used with executemany.
    return or_(*(ledger.c.state == state for state in states))


def _keys(events: Iterable[DeliveryEvent]) -> list[dict[str, int]]:
    rows = dict.fromkeys((e.campaign_id, e.subscriber_id) for e in events)
    return [{"campaign": campaign, "subscriber": subscriber} for campaign, subscriber in rows]


def _refusal(event: str) -> str:
    return f"{event} (reported by the provider)"


def _finish_settled(connection: Connection, campaign_ids: set[int], when: dt.datetime) -> None:
    """A campaign whose last unknown rows the events settled is finished now."""
    if not campaign_ids:
        return
    unsettled = exists().where(
        ledger.c.campaign_id == campaigns.c.id,
        ledger.c.state.in_(("pending", "in_flight", "unknown")),
    )
    connection.execute(
        update(campaigns)
        .where(
            campaigns.c.id.in_(sorted(campaign_ids)),
            campaigns.c.finished_at.is_(None),
            ~unsettled,
        )
        .values(finished_at=when)
    )
