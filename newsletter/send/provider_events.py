"""What providers report back, applied to the subscriber store and the campaign ledger.

Every provider's webhook (``web/webhooks.py`` for SendGrid, ``web/webhooks_<provider>.py``
for the others) checks that a request is genuine, reads its events into
:class:`~newsletter.send.webhook_event.ProviderEvent` s and hands them to
:meth:`EventProcessor.apply`: the web layer verifies and translates, this module applies.

A batch is applied in one transaction, together with the record of its events' ids in
``webhook_events``: either every new event of the batch takes effect and is
remembered, or none is (a killed worker, a timeout, a database error), and the
provider's retry of the batch applies them then. An event id already remembered is a
duplicate and skipped. The work is set-based (a few statements per batch, not a round
trip per event), so a batch of SendGrid's maximum size is applied in seconds, within
any worker timeout.

An event's ``kind`` is in SendGrid's vocabulary, which the other webhooks translate
into: ``processed``, ``delivered``, ``deferred``, ``bounce``, ``dropped`` and ``blocked``
(a refusal of the content or the sender, not the address: the row fails with an error
starting ``blocked:``, counted per campaign by ``status`` and ``report``) move the
message's ledger row (:mod:`newsletter.send.delivery_events`), found through the
campaign and subscriber ids the sender gave the provider and it echoes; ``open`` and
``click`` add to the campaign's totals when the provider that reports them tracks for
the editor (``sendgrid.tracking``, ``postmark.tracking``, ``mailgun.tracking``,
``ses.tracking``: :attr:`newsletter.config.Config.provider_tracking`), remember the
reader (``engagement_by_subscriber``, first time only, so unique opens and clicks are
exact and a retried batch adds nothing) and a click its URL
(``provider_link_clicks``, for the report's top links). ``new_status`` is what the
subscriber becomes; which status may overwrite which (a complaint is never downgraded,
nothing brings anyone back) is :mod:`newsletter.store.statuses`' rule, applied in the
same transaction. Free text (reasons, URLs) is stored without control characters
(:func:`newsletter.safe_text.clean_text`), whichever webhook brought it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, select

from newsletter.safe_text import clean_text
from newsletter.send.delivery_events import DeliveryEvent, apply_delivery_events
from newsletter.send.webhook_event import ProviderEvent
from newsletter.store.database import insert_on_conflict, writing
from newsletter.store.engagement import add_link_clicks, add_totals, record_readers
from newsletter.store.schema import subscribers, webhook_events
from newsletter.store.statuses import StatusChange, change_statuses

LEDGER_EVENTS = frozenset({"processed", "delivered", "deferred", "bounce", "dropped", "blocked"})
ENGAGEMENT_EVENTS = frozenset({"open", "click"})
# Providers retry a batch for up to a day (SendGrid: 24 hours); remember ids well beyond.
REMEMBER_EVENTS_FOR = dt.timedelta(days=7)
# Ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits.
CHUNK = 500

T = TypeVar("T")


@dataclass
class EventTally:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0  # unknown subscriber, or an event that changes nothing here
    replayed: bool = False  # a claim of apply() was seen before: nothing was applied


class _Replayed(Exception):
    """A request's one-time token was claimed before: roll the whole batch back."""


class EventProcessor:
    """Applies provider events to ``store``'s database; ``tracked_by``: the providers
    (an event's ``source``) whose opens and clicks are counted (the others' are ignored:
    the editor did not turn their tracking on here)."""

    def __init__(
        self,
        store: Any,
        *,
        tracked_by: Collection[str] = (),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.engine = store.engine
        self.tracked_by = frozenset(tracked_by)
        self.clock = clock

    def apply(self, parsed: Sequence[ProviderEvent], *, claims: Sequence[str] = ()) -> EventTally:
        """Apply a batch of events, read from any provider, in one transaction.

        ``claims`` are one-time values of the request (Mailgun's signature token),
        recorded in the same transaction: if any was recorded before, the request is a
        replay and nothing is applied (``replayed``). A worker killed before the commit
        records neither, so the provider's retry goes through.
        """
        try:
            return self._apply([_visible_only(event) for event in parsed], claims)
        except _Replayed:
            return EventTally(replayed=True)

    def _apply(self, parsed: Sequence[ProviderEvent], claims: Sequence[str]) -> EventTally:
        tally = EventTally()
        now = self.clock()
        with writing(self.engine) as connection:
            if claims and len(_claim_ids(connection, claims, now)) < len(set(claims)):
                raise _Replayed
            fresh = _claim(connection, parsed, now)
            tally.duplicates = len(parsed) - len(fresh)
            whose = _resolve(connection, fresh)
            engagement: Counter[tuple[int, str]] = Counter()
            readers: set[tuple[int, str, int]] = set()  # (campaign, open | click, subscriber)
            link_clicks: Counter[tuple[int, str]] = Counter()  # (campaign, url)
            deliveries: list[DeliveryEvent] = []
            changes: list[StatusChange] = []
            for event, subscriber_id in zip(fresh, whose, strict=True):
                applied = False
                if event.kind in ENGAGEMENT_EVENTS:
                    if event.source in self.tracked_by and event.campaign_id is not None:
                        engagement[(event.campaign_id, event.kind)] += 1
                        if subscriber_id is not None:
                            readers.add((event.campaign_id, event.kind, subscriber_id))
                        if event.kind == "click" and event.url:
                            link_clicks[(event.campaign_id, event.url)] += 1
                        applied = True
                elif subscriber_id is not None:
                    if event.kind in LEDGER_EVENTS and event.campaign_id is not None:
                        deliveries.append(
                            DeliveryEvent(
                                event.campaign_id, subscriber_id, event.kind, event.message_id
                            )
                        )
                        applied = True
                    if event.new_status is not None:
                        # An unsubscribe is the provider's record; the rest is its report.
                        unsubscribe = event.new_status == "unsubscribed"
                        source = event.source if unsubscribe else "provider"
                        changes.append(
                            StatusChange(
                                subscriber_id,
                                event.new_status,
                                source,
                                event.reason,
                                event.campaign_id,
                            )
                        )
                        applied = True
                if applied:
                    tally.applied += 1
                else:
                    tally.ignored += 1
            apply_delivery_events(connection, deliveries, when=now)
            change_statuses(connection, changes, when=now)
            add_totals(connection, engagement)
            record_readers(connection, readers, now)
            add_link_clicks(connection, link_clicks)
            connection.execute(
                delete(webhook_events).where(
                    webhook_events.c.received_at < now - REMEMBER_EVENTS_FOR
                )
            )
        return tally


def _visible_only(event: ProviderEvent) -> ProviderEvent:
    """The event's free text (a reason, a click's URL, a message id) without control
    characters: it is printed by ``report``, ``status`` and ``subscribers describe`` and
    exported as CSV, where an ESC would drive the editor's terminal."""
    texts = (event.reason, event.url or "", event.message_id or "")
    if all(text.isprintable() for text in texts):  # the common case
        return event
    return replace(
        event,
        reason=clean_text(event.reason),
        url=clean_text(event.url) or None if event.url else None,
        message_id=clean_text(event.message_id) or None if event.message_id else None,
    )


def _claim(
    connection: Connection, events: Sequence[ProviderEvent], now: dt.datetime
) -> list[ProviderEvent]:
    """The events not seen before, their ids recorded (in the caller's transaction);
    events without an id are always new."""
    ids = list(dict.fromkeys(event.event_id for event in events if event.event_id))
    claimed = _claim_ids(connection, ids, now)
    fresh = []
    for event in events:
        if event.event_id is None:
            fresh.append(event)
        elif event.event_id in claimed:
            claimed.discard(event.event_id)  # a second copy in the same batch is a duplicate
            fresh.append(event)
    return fresh


def _claim_ids(connection: Connection, ids: Sequence[str], now: dt.datetime) -> set[str]:
    """Record ``ids`` as seen (in the caller's transaction); the ones not seen before."""
    if not ids:
        return set()
    # executemany with RETURNING: SQLAlchemy batches the rows into multi-row INSERTs
    # ("insertmanyvalues") from one compiled statement.
    return set(
        connection.execute(
            insert_on_conflict(connection, webhook_events)
            .on_conflict_do_nothing()
            .returning(webhook_events.c.event_id),
            [{"event_id": event_id, "received_at": now} for event_id in dict.fromkeys(ids)],
        ).scalars()
    )


def _resolve(connection: Connection, events: Sequence[ProviderEvent]) -> list[int | None]:
    """Each event's subscriber id: by the echoed id when its address agrees (an id alone
    could be stale after an erasure), else by the address; None for no one."""
    echoed = {e.subscriber_id for e in events if e.subscriber_id is not None and e.email_key}
    key_of: dict[int, str] = {}
    for chunk in _chunks(sorted(echoed)):
        rows = connection.execute(
            select(subscribers.c.id, subscribers.c.email_key).where(subscribers.c.id.in_(chunk))
        )
        key_of.update((id_, key) for id_, key in rows)
    matched = [
        e.subscriber_id
        if e.subscriber_id is not None
        and e.email_key
        and key_of.get(e.subscriber_id) == e.email_key
        else None
        for e in events
    ]
    wanted = sorted(
        {e.email_key for e, m in zip(events, matched, strict=True) if m is None and e.email_key}
    )
    id_of: dict[str, int] = {}
    for keys in _chunks(wanted):
        id_of.update(
            (key, id_)
            for id_, key in connection.execute(
                select(subscribers.c.id, subscribers.c.email_key).where(
                    subscribers.c.email_key.in_(keys)
                )
            )
        )
    return [
        m if m is not None else (id_of.get(e.email_key) if e.email_key else None)
        for e, m in zip(events, matched, strict=True)
    ]


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
