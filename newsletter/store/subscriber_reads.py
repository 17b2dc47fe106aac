"""Reading subscribers: one by id, link or address, many streamed, counts, and
everything stored about one person."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select, true

from newsletter.errors import StoreError
from newsletter.models import SUBSCRIBER_STATUSES, Subscriber
from newsletter.store.addresses import address_hash
from newsletter.store.schema import (
    campaigns,
    ledger,
    subscriber_events,
    subscriber_topics,
    subscribers,
)
from newsletter.store.store_base import StoreBase
from newsletter.store.subscriber_rows import (
    SUBSCRIBER_COLUMNS,
    hash_suppressed,
    iso,
    link_matches,
    lookup_key,
    record_of,
    topics_of,
)


class SubscriberReads(StoreBase):
    """The store's reads; none of them writes."""

    def get(self, subscriber_id: int) -> Subscriber | None:
        return self._one(subscribers.c.id == subscriber_id)

    def holder(self, subscriber_id: int, link_key: str | None) -> Subscriber | None:
        """The subscriber a signed link was issued to, or None: erased, or a link issued
        to someone else. ``link_key`` None is a link from before link keys, which only
        the rows that existed then accept (see :mod:`newsletter.store.link_keys`)."""
        return self._one((subscribers.c.id == subscriber_id) & link_matches(link_key))

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address, whatever its case; None if there is none."""
        return self._one(subscribers.c.email_key == lookup_key(email))

    def _one(self, condition: ColumnElement[bool]) -> Subscriber | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(subscribers).where(condition)).one_or_none()
            if row is None:
                return None
            return self._subscriber(row, topics_of(connection, [row.id]).get(row.id, ()))

    def recipients(self, topics: Sequence[str] | None) -> Iterator[Subscriber]:
        """Active subscribers in id order: all of them, or those with any of ``topics``.

        Streamed in keyset pages, each read in its own short transaction, so memory
        stays flat and no lock is held while the caller works on a page.
        """
        for row, row_topics in self._pages(self._recipient_filter(topics), SUBSCRIBER_COLUMNS):
            yield self._subscriber(row, row_topics)

    def count_recipients(self, topics: Sequence[str] | None) -> int:
        with self.engine.connect() as connection:
            count = connection.scalar(
                select(func.count()).select_from(subscribers).where(self._recipient_filter(topics))
            )
        return count or 0

    def subscribers(
        self, *, status: str | None = None, topics: Sequence[str] | None = None
    ) -> Iterator[Subscriber]:
        """Every subscriber, optionally of one status and/or any of some topics; streamed."""
        for row, row_topics in self._pages(self._filter(status, topics), SUBSCRIBER_COLUMNS):
            yield self._subscriber(row, row_topics)

    def records(
        self,
        *,
        status: str | None = None,
        topics: Sequence[str] | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Like :meth:`subscribers`, with the consent record: what an export writes.
        ``where``: a further condition on ``subscribers`` (a segment's)."""
        condition = self._filter(status, topics)
        if where is not None:
            condition = condition & where
        for row, row_topics in self._pages(condition, subscribers.c):
            yield record_of(row, self._ordered(row_topics))

    def counts(self, where: ColumnElement[bool] | None = None) -> dict[str, dict[str, int]]:
        """Subscribers by status, and active subscribers by topic; ``where``: only the
        subscribers of a further condition (a segment's)."""
        chosen = true() if where is None else where
        with self.engine.connect() as connection:
            by_status: dict[str, int] = {
                status: count
                for status, count in connection.execute(
                    select(subscribers.c.status, func.count())
                    .where(chosen)
                    .group_by(subscribers.c.status)
                )
            }
            by_topic: dict[str, int] = {
                topic: count
                for topic, count in connection.execute(
                    select(subscriber_topics.c.topic, func.count())
                    .join(subscribers, subscribers.c.id == subscriber_topics.c.subscriber_id)
                    .where(subscribers.c.status == "active", chosen)
                    .group_by(subscriber_topics.c.topic)
                )
            }
        return {
            "status": {status: by_status.get(status, 0) for status in SUBSCRIBER_STATUSES},
            "topics": {topic: by_topic.get(topic, 0) for topic in self.topics}
            | {topic: count for topic, count in by_topic.items() if topic not in self.topics},
        }

    def describe(self, email: str) -> dict[str, Any]:
        """Everything stored about one person: the answer to a data access request."""
        key = lookup_key(email)
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.email_key == key)
            ).one_or_none()
            erased = hash_suppressed(connection, address_hash(email))
            if row is None:
                if erased:
                    return {
                        "email": email.strip(),
                        "erased": True,
                        "note": "erased on request; only a SHA-256 hash of the address "
                        "is kept, so that it is never mailed again",
                    }
                raise StoreError(f"no subscriber with address {email.strip()}")
            events = connection.execute(
                select(subscriber_events)
                .where(subscriber_events.c.subscriber_id == row.id)
                .order_by(subscriber_events.c.id)
            ).all()
            row_topics = topics_of(connection, [row.id]).get(row.id, ())
            # Which issues were mailed to them: part of what is stored about a person.
            mailings = connection.execute(
                select(campaigns.c.slug, campaigns.c.subject, ledger.c.state, ledger.c.sent_at)
                .join(campaigns, campaigns.c.id == ledger.c.campaign_id)
                .where(ledger.c.subscriber_id == row.id)
                .order_by(campaigns.c.id)
            ).all()
        record = record_of(row, self._ordered(row_topics))
        record["events"] = [
            {
                "at": iso(event.at),
                "event": event.event,
                "source": event.source,
                "ip": event.ip,
                "detail": event.detail,
            }
            for event in events
        ]
        record["mailings"] = [
            {
                "issue": mailing.slug,
                "subject": mailing.subject,
                "state": mailing.state,
                "sent_at": iso(mailing.sent_at),
            }
            for mailing in mailings
        ]
        return {"id": row.id, **record, "erased": False}
