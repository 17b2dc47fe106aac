"""SendGrid's delivery events, applied to the subscriber store and the campaign ledger.

Each event is applied at most once: its ``sg_event_id`` is claimed in the
``webhook_events`` table first, and released again only if applying it failed, so
SendGrid's retry of the batch (it retries on any non-2xx answer) tries it again.

What changes a subscriber, and why:

- ``bounce`` (hard, ``type: bounce``) and ``dropped`` with reason ``Bounced Address``
  -> bounced. A ``type: blocked`` bounce is the receiving server refusing the sender
  for now (reputation, content), not the address: it fails the delivery, nothing more.
- ``spamreport``, and ``dropped`` with reason ``Spam Reporting Address`` -> complained.
- ``unsubscribe``, ``group_unsubscribe``, and ``dropped`` with reason
  ``Unsubscribed Address`` -> unsubscribed. ``group_resubscribe`` changes nothing:
  the store never reactivates a suppressed subscriber behind the editor's back.

``processed``, ``delivered``, ``deferred``, ``bounce`` and ``dropped`` also move the
message's ledger row, found through the ``campaign_id`` and ``subscriber_id`` that the
sender puts in ``custom_args`` and SendGrid echoes in every event.

``open`` and ``click`` add to the campaign's totals when ``sendgrid.tracking`` is on,
and are ignored otherwise (SendGrid may still send them if tracking is on in its
settings; the editor's choice here wins).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from newsletter.models import Subscriber
from newsletter.store.schema import campaign_engagement, webhook_events
from newsletter.web.sql import insert_on_conflict, writing

log = logging.getLogger(__name__)

# The custom_args keys the sender sets on every personalization.
CAMPAIGN_ARG = "campaign_id"
SUBSCRIBER_ARG = "subscriber_id"

LEDGER_EVENTS = frozenset({"processed", "delivered", "deferred", "bounce", "dropped"})
UNSUBSCRIBE_EVENTS = frozenset({"unsubscribe", "group_unsubscribe"})
ENGAGEMENT_EVENTS = frozenset({"open", "click"})
DROP_REASONS = {
    "bounced address": "bounced",
    "spam reporting address": "complained",
    "unsubscribed address": "unsubscribed",
}
# SendGrid retries a batch for up to 24 hours; remember event ids well beyond that.
REMEMBER_EVENTS_FOR = dt.timedelta(days=7)
WEBHOOK_SOURCE = "sendgrid"

LedgerUpdate = Callable[..., bool]


@dataclass
class EventTally:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0  # unknown subscriber, or an event that changes nothing here


class EventProcessor:
    def __init__(
        self,
        store: Any,
        ledger_update: LedgerUpdate,
        *,
        count_engagement: bool = False,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.engine = store.engine
        self.ledger_update = ledger_update
        self.count_engagement = count_engagement
        self.clock = clock

    def process(self, events: Iterable[Mapping[str, Any]]) -> EventTally:
        tally = EventTally()
        now = self.clock()
        for event in events:
            event_id = event.get("sg_event_id")
            if isinstance(event_id, str) and not self._claim(event_id, now):
                tally.duplicates += 1
                continue
            try:
                applied = self._apply(event)
            except Exception:
                if isinstance(event_id, str):
                    self._release(event_id)
                raise
            if applied:
                tally.applied += 1
            else:
                tally.ignored += 1
        self._forget_before(now - REMEMBER_EVENTS_FOR)
        return tally

    def _apply(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event")
        campaign_id = _as_int(event.get(CAMPAIGN_ARG))
        if kind in ENGAGEMENT_EVENTS:
            if not self.count_engagement or campaign_id is None:
                return False
            self._count(campaign_id, str(kind))
            return True
        subscriber = self._subscriber(event)
        if subscriber is None:
            return False
        applied = False
        if kind in LEDGER_EVENTS and campaign_id is not None:
            message_id = event.get("sg_message_id")
            self.ledger_update(
                self.store,
                campaign_id=campaign_id,
                subscriber_id=subscriber.id,
                event=kind,
                message_id=message_id if isinstance(message_id, str) else None,
            )
            applied = True
        new_status = _status_after(event)
        reason = str(event.get("reason") or kind)
        if new_status in ("bounced", "complained"):
            self.store.mark(subscriber.id, new_status, reason=reason)
            applied = True
        elif new_status == "unsubscribed":
            self.store.unsubscribe(
                subscriber.id, source=WEBHOOK_SOURCE, reason=reason, campaign_id=campaign_id
            )
            applied = True
        return applied

    def _subscriber(self, event: Mapping[str, Any]) -> Subscriber | None:
        """The subscriber the event is about: by the echoed id when its address agrees
        (an id alone could be stale after an erasure), else by the address."""
        email = event.get("email")
        if not isinstance(email, str) or not email:
            return None
        subscriber_id = _as_int(event.get(SUBSCRIBER_ARG))
        if subscriber_id is not None:
            subscriber = self.store.get(subscriber_id)
            if subscriber is not None and subscriber.email.lower() == email.lower():
                return subscriber
        return self.store.find(email)

    def _count(self, campaign_id: int, kind: str) -> None:
        with writing(self.engine) as connection:
            connection.execute(
                insert_on_conflict(connection, campaign_engagement)
                .values(campaign_id=campaign_id, event=kind, count=1)
                .on_conflict_do_update(
                    index_elements=[campaign_engagement.c.campaign_id, campaign_engagement.c.event],
                    set_={"count": campaign_engagement.c.count + 1},
                )
            )

    def _claim(self, event_id: str, now: dt.datetime) -> bool:
        with writing(self.engine) as connection:
            claim = (
                insert_on_conflict(connection, webhook_events)
                .values(event_id=event_id[:100], received_at=now)
                .on_conflict_do_nothing()
                .returning(webhook_events.c.event_id)
            )
            # RETURNING, not rowcount: psycopg reports no row count for this statement.
            return connection.execute(claim).scalar() is not None

    def _release(self, event_id: str) -> None:
        with writing(self.engine) as connection:
            connection.execute(
                delete(webhook_events).where(webhook_events.c.event_id == event_id[:100])
            )

    def _forget_before(self, cutoff: dt.datetime) -> None:
        with writing(self.engine) as connection:
            connection.execute(delete(webhook_events).where(webhook_events.c.received_at < cutoff))


def _status_after(event: Mapping[str, Any]) -> str | None:
    kind = event.get("event")
    if kind == "bounce":
        return None if event.get("type") == "blocked" else "bounced"
    if kind == "dropped":
        return DROP_REASONS.get(str(event.get("reason", "")).strip().lower())
    if kind == "spamreport":
        return "complained"
    if kind in UNSUBSCRIBE_EVENTS:
        return "unsubscribed"
    return None


def _as_int(value: object) -> int | None:
    """A custom_args value: SendGrid echoes them as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    return None
