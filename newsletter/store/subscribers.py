"""The subscriber store: who may be mailed, about what, and on what consent.

:class:`Store` joins the reads (:mod:`~newsletter.store.subscriber_reads`) and the
changes (:mod:`~newsletter.store.subscriber_changes`) to adding subscribers, one at a
time or a chunk of an import at once, here. Every change is one short transaction;
the SQL pieces they share are in :mod:`~newsletter.store.subscriber_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update

from newsletter.errors import StoreError
from newsletter.models import SUPPRESSED_STATUSES, Subscriber
from newsletter.safe_text import without_controls
from newsletter.store.addresses import address_hash, address_key, normalize_address
from newsletter.store.automation_tables import enter, enter_imported
from newsletter.store.bulk import merge_chunk
from newsletter.store.bulk_plan import BulkOutcome, Candidate
from newsletter.store.dry_run import DryRun
from newsletter.store.schema import new_link_key, subscribers
from newsletter.store.subscriber_changes import SubscriberChanges
from newsletter.store.subscriber_reads import SubscriberReads
from newsletter.store.subscriber_rows import (
    hash_suppressed,
    insert_topics,
    log_event,
    now,
    topics_of,
    unknown_topic_message,
)

Outcome = Literal["added", "updated", "unchanged"]


@dataclass(frozen=True)
class Added:
    subscriber: Subscriber
    outcome: Outcome


class Store(SubscriberReads, SubscriberChanges):
    """Subscribers in one database; ``topics`` are the ids ``newsletter.yaml`` defines."""

    def add(
        self,
        email: str,
        *,
        name: str = "",
        topics: Sequence[str] = (),
        status: str = "active",
        source: str = "cli",
        ip: str | None = None,
        attributes: Mapping[str, str] | None = None,
        own_request: bool = False,
    ) -> Subscriber:
        """Add a subscriber, or merge into the pending/active one with that address.

        Suppressed and erased addresses raise :class:`StoreError`: consent withdrawn
        is never given back by an add. The one exception is ``own_request`` (the
        person typed the address into the signup form): an erased address may start
        over as ``pending``, and only its confirmation (:meth:`confirm`) lifts the
        erasure, so the person's new consent is proven by the link mailed to them.
        """
        return self.add_or_merge(
            email,
            name=name,
            topics=topics,
            status=status,
            source=source,
            ip=ip,
            attributes=attributes,
            own_request=own_request,
        ).subscriber

    def add_or_merge(
        self,
        email: str,
        *,
        name: str = "",
        topics: Sequence[str] = (),
        status: str = "active",
        source: str = "cli",
        ip: str | None = None,
        attributes: Mapping[str, str] | None = None,
        own_request: bool = False,
    ) -> Added:
        """Like :meth:`add`, also saying whether it added, updated or left it unchanged."""
        if status not in ("active", "pending"):
            raise StoreError(f"a new subscriber is 'active' or 'pending', not {status!r}")
        if own_request and status != "pending":
            raise StoreError("a signup of one's own is 'pending' until it is confirmed")
        normalized = normalize_address(email)
        wanted_topics = self.check_topics(topics)
        name = without_controls(name)
        attributes = dict(attributes or {})
        return self._write_retrying(
            lambda connection: self._add_or_merge(
                connection,
                normalized,
                name,
                wanted_topics,
                status,
                source,
                ip,
                attributes,
                own_request,
            )
        )

    def _add_or_merge(
        self,
        connection: Connection,
        email: str,
        name: str,
        topics: tuple[str, ...],
        status: str,
        source: str,
        ip: str | None,
        attributes: dict[str, str],
        own_request: bool,
    ) -> Added:
        key = address_key(email)
        if not own_request and hash_suppressed(connection, address_hash(email)):
            raise StoreError(
                f"{email} was erased at the person's request and stays suppressed; "
                "it cannot be added again"
            )
        row = connection.execute(
            select(subscribers).where(subscribers.c.email_key == key)
        ).one_or_none()
        if row is None:
            when = now()
            link_key = new_link_key()
            subscriber_id = connection.scalar(
                insert(subscribers)
                .values(
                    email=email,
                    email_key=key,
                    name=name,
                    status=status,
                    attributes=attributes,
                    created_at=when,
                    updated_at=when,
                    source=source,
                    opt_in_at=when,
                    opt_in_ip=ip,
                    link_key=link_key,
                    was_active=status == "active",
                )
                .returning(subscribers.c.id)
            )
            assert subscriber_id is not None
            insert_topics(connection, subscriber_id, topics)
            if status == "active":
                enter(connection, [subscriber_id], when, "added")
            subscriber = Subscriber(
                subscriber_id, email, name, status, topics, attributes, link_key
            )
            return Added(subscriber, "added")

        if row.status in SUPPRESSED_STATUSES:
            raise StoreError(
                f"{row.email} is {row.status}; a suppressed address is never reactivated "
                "by an add or import (the person can resubscribe from a link in any issue)"
            )
        current_topics = topics_of(connection, [row.id]).get(row.id, ())
        new_topics = tuple(topic for topic in topics if topic not in current_topics)
        merged_attributes = {**row.attributes, **attributes}
        changes: dict[str, Any] = {}
        if name and name != row.name:
            changes["name"] = name
        if merged_attributes != row.attributes:
            changes["attributes"] = merged_attributes
        if not changes and not new_topics:
            return Added(self._subscriber(row, current_topics), "unchanged")
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == row.id)
            .values(**changes, updated_at=now())
        )
        insert_topics(connection, row.id, new_topics)
        log_event(
            connection,
            row.id,
            "updated",
            source=source,
            ip=ip,
            detail={"fields": sorted(changes), "topics_added": list(new_topics)},
        )
        merged = connection.execute(select(subscribers).where(subscribers.c.id == row.id)).one()
        return Added(self._subscriber(merged, (*current_topics, *new_topics)), "updated")

    def merge_many(
        self,
        candidates: Sequence[Candidate],
        *,
        dry_run: bool = False,
        planned: DryRun | None = None,
        welcome: bool = False,
    ) -> list[BulkOutcome]:
        """Add or merge a chunk of validated rows in one transaction.

        Addresses must be unique within the chunk. The outcome of each row, in order.
        With ``dry_run`` nothing is written: the outcomes are planned as the run plans
        them, over what ``planned`` (the same :class:`DryRun` for every file of one
        import) says the earlier files would have written. ``welcome``: the rows added
        as active enter the automations (an import enters nobody otherwise: a list moved
        from another service was greeted there).
        """
        unknown = {topic for c in candidates for topic in c.topics} - self._topic_rank.keys()
        if unknown:
            raise StoreError(unknown_topic_message(min(unknown), self.topics))
        if dry_run:
            with self.engine.connect() as connection:
                return (planned or DryRun(remember=False)).plan(connection, candidates, now())

        def merge(connection: Connection) -> list[BulkOutcome]:
            when = now()
            outcomes = merge_chunk(connection, candidates, when)
            if welcome:
                enter_imported(connection, candidates, outcomes, when)
            return outcomes

        return self._write_retrying(merge)
