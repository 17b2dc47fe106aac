"""Provider events (SendGrid's Event Webhook) applied to campaign ledgers: one
(:func:`apply_delivery_event`) or many at once (:func:`apply_delivery_events`).

The set-based twin of :func:`apply_delivery_event`: a webhook batch
holds thousands of events, and one UPDATE per campaign and 500 ids (plus one
executemany for message ids not known yet) keeps a batch of SendGrid's maximum size
well within a worker's timeout. It works on a connection the caller holds, so
the events' effects commit in the same transaction as the record that they were seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, bindparam, exists, select, update

from newsletter.send.campaign_rows import engine_of, now, write_connection
from newsletter.store import Store
from newsletter.store.schema import campaigns, ledger

# Webhook events that prove the provider has the message, and those that say it never
# will deliver it.
ACCEPTED_EVENTS = frozenset({"processed", "delivered", "deferred"})
# "blocked": the receiving server refused the content or the sender, not the address
# (SendGrid's bounce of type blocked); recorded as blocked like the mailbox's policy blocks.
REFUSED_EVENTS = frozenset({"bounce", "dropped", "blocked"})


def refusal_error(event: str) -> str:
    """The ledger error of a copy the provider reports refused by ``event``; a block's
    starts with ``blocked: `` (store/returns.BLOCKED), which status and report count."""
    if event == "blocked":
        return "blocked: refused for the content or the sender (reported by the provider)"
    return f"{event} (reported by the provider)"


def apply_delivery_event(
    store: Store | Engine,
    *,
    campaign_id: int,
    subscriber_id: int,
    event: str,
    message_id: str | None,
) -> bool:
    """Reconcile one provider event (SendGrid Event Webhook) with the ledger.

    ``processed``/``delivered``/``deferred`` prove the provider has the message: a row
    still ``unknown`` or ``in_flight`` (or put back to ``pending`` by --retry-unknown
    after an earlier hand-off) becomes ``sent``. ``bounce``/``dropped`` mean it will not
    be delivered: the row becomes ``failed``. Other events leave the ledger alone.
    Returns True when a row changed.
    """
    when = now()
    handed_over = (ledger.c.state == "pending") & (ledger.c.attempts > 0)
    if event in ACCEPTED_EVENTS:
        condition = ledger.c.state.in_(("unknown", "in_flight")) | handed_over
        values: dict[str, Any] = {"state": "sent", "sent_at": when, "error": None}
    elif event in REFUSED_EVENTS:
        condition = ledger.c.state.in_(("unknown", "in_flight", "sent")) | handed_over
        values = {"state": "failed", "error": refusal_error(event)}
    else:
        return False
    row = and_(ledger.c.campaign_id == campaign_id, ledger.c.subscriber_id == subscriber_id)
    with write_connection(engine_of(store)) as connection, connection.begin():
        changed = connection.execute(
            update(ledger).where(row, condition).values(**values, updated_at=when)
        ).rowcount
        if changed and message_id:
            connection.execute(
                update(ledger)
                .where(row, ledger.c.message_id.is_(None))
                .values(message_id=message_id)
            )
    return bool(changed)


class DeliveryEvent(NamedTuple):
    campaign_id: int
    subscriber_id: int
    event: str  # processed, delivered, deferred, bounce, dropped, blocked
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
    # Set-based: per campaign (a batch rarely spans more than one), per id list.
    accepted = _by_campaign(e for e in events if e.event in ACCEPTED_EVENTS)
    for campaign_id, ids in accepted.items():
        for chunk in _chunks(ids):
            connection.execute(
                update(ledger)
                .where(
                    ledger.c.campaign_id == campaign_id,
                    ledger.c.subscriber_id.in_(chunk),
                    ledger.c.state.in_(("unknown", "in_flight")) | handed_over,
                )
                .values(state="sent", sent_at=when, error=None, updated_at=when)
            )
    for kind in sorted(REFUSED_EVENTS):
        refused = _by_campaign(e for e in events if e.event == kind)
        for campaign_id, ids in refused.items():
            for chunk in _chunks(ids):
                connection.execute(
                    update(ledger)
                    .where(
                        ledger.c.campaign_id == campaign_id,
                        ledger.c.subscriber_id.in_(chunk),
                        ledger.c.state.in_(("unknown", "in_flight", "sent")) | handed_over,
                    )
                    .values(state="failed", error=refusal_error(kind), updated_at=when)
                )
    first_ids: dict[tuple[int, int], str] = {}
    for e in events:
        if e.message_id and e.event in ACCEPTED_EVENTS | REFUSED_EVENTS:
            first_ids.setdefault((e.campaign_id, e.subscriber_id), e.message_id)
    # Only rows without one (their send's answer was lost): most have it from the send.
    missing: list[dict[str, object]] = []
    for campaign_id, ids in _by_campaign(
        DeliveryEvent(campaign, subscriber, "", None) for campaign, subscriber in first_ids
    ).items():
        for chunk in _chunks(ids):
            missing.extend(
                {"campaign": campaign_id, "subscriber": id_, "found": first_ids[(campaign_id, id_)]}
                for id_ in connection.scalars(
                    select(ledger.c.subscriber_id).where(
                        ledger.c.campaign_id == campaign_id,
                        ledger.c.subscriber_id.in_(chunk),
                        ledger.c.message_id.is_(None),
                    )
                )
            )
    if missing:
        connection.execute(
            update(ledger)
            .where(row, ledger.c.message_id.is_(None))
            .values(message_id=bindparam("found")),
            missing,
        )
    _finish_settled(connection, {event.campaign_id for event in events}, when)


def _by_campaign(events: Iterable[DeliveryEvent]) -> dict[int, list[int]]:
    """Subscriber ids per campaign, each once, sorted."""
    found: dict[int, set[int]] = {}
    for event in events:
        found.setdefault(event.campaign_id, set()).add(event.subscriber_id)
    return {campaign_id: sorted(ids) for campaign_id, ids in found.items()}


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


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
