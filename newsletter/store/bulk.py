"""Adding many subscribers at once: one chunk of an import, in one transaction.

The rules are those of :meth:`Store.add_or_merge`, applied with a handful of set-based
statements per chunk instead of several per row, so that an import runs at the
speed of the database rather than of round trips:

- an erased (hash-suppressed) or suppressed address is left alone: ``suppressed``;
- a new address is inserted with the status it was given: ``added`` (importing
  someone as unsubscribed keeps them suppressed: how a list moves platforms);
- a pending or active address gets the name, extra topics and attributes it was
  given, or an opt-out the file records: ``updated``, else ``unchanged``.
  Its status is never raised (pending stays pending) and topics are never removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, insert, select, update

from newsletter.models import SUPPRESSED_STATUSES
from newsletter.store.addresses import address_key
from newsletter.store.schema import (
    subscriber_events,
    subscriber_topics,
    subscribers,
    suppressions,
)

BulkOutcome = Literal["added", "updated", "unchanged", "suppressed"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One validated row: an address (normalised) and what the file says about it."""

    email: str
    name: str = ""
    topics: tuple[str, ...] = ()
    status: str = "active"
    source: str = "import"
    subscribed_at: dt.datetime | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def merge_chunk(
    connection: Connection, candidates: Sequence[Candidate], when: dt.datetime
) -> list[BulkOutcome]:
    """Apply one chunk (addresses unique within it); the outcome of each, in order."""
    keys = [address_key(candidate.email) for candidate in candidates]
    hashes = {key: hashlib.sha256(key.encode("utf-8")).hexdigest() for key in keys}
    erased = set(
        connection.scalars(
            select(suppressions.c.email_hash).where(
                suppressions.c.email_hash.in_(list(hashes.values()))
            )
        )
    )
    existing = {
        row.email_key: row
        for row in connection.execute(
            select(
                subscribers.c.id,
                subscribers.c.email_key,
                subscribers.c.name,
                subscribers.c.status,
                subscribers.c.attributes,
            ).where(subscribers.c.email_key.in_(keys))
        )
    }
    existing_topics: dict[int, set[str]] = {}
    if existing:
        for subscriber_id, topic in connection.execute(
            select(subscriber_topics.c.subscriber_id, subscriber_topics.c.topic).where(
                subscriber_topics.c.subscriber_id.in_([row.id for row in existing.values()])
            )
        ):
            existing_topics.setdefault(subscriber_id, set()).add(topic)

    outcomes: list[BulkOutcome] = []
    new_rows: list[dict[str, Any]] = []
    new_topics: list[tuple[str, ...]] = []
    changed_rows: list[dict[str, Any]] = []
    opt_outs: list[dict[str, Any]] = []
    added_topics: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    for candidate, key in zip(candidates, keys, strict=True):
        row = existing.get(key)
        if hashes[key] in erased or (row is not None and row.status in SUPPRESSED_STATUSES):
            outcomes.append("suppressed")
            continue
        if row is None:
            new_rows.append(_new_row(candidate, key, when))
            new_topics.append(candidate.topics)
            outcomes.append("added")
            continue

        merged_attributes = {**row.attributes, **candidate.attributes}
        name = candidate.name or row.name
        extra_topics = [t for t in candidate.topics if t not in existing_topics.get(row.id, ())]
        changed_fields = [
            column
            for column, changed in (
                ("name", name != row.name),
                ("attributes", merged_attributes != row.attributes),
            )
            if changed
        ]
        opting_out = candidate.status in SUPPRESSED_STATUSES
        if not changed_fields and not extra_topics and not opting_out:
            outcomes.append("unchanged")
            continue
        if changed_fields or extra_topics:
            changed_rows.append(
                {"b_id": row.id, "name": name, "attributes": merged_attributes, "updated_at": when}
            )
            added_topics.extend({"subscriber_id": row.id, "topic": t} for t in extra_topics)
            events.append(
                _event(
                    row.id,
                    "updated",
                    candidate.source,
                    when,
                    {"fields": changed_fields, "topics_added": extra_topics},
                )
            )
        if opting_out:
            opt_outs.append(_opt_out(row.id, candidate, when))
            events.append(_event(row.id, candidate.status, candidate.source, when, {}))
        outcomes.append("updated")

    if new_rows:
        ids = connection.scalars(
            insert(subscribers).returning(subscribers.c.id, sort_by_parameter_order=True),
            new_rows,
        ).all()
        topic_rows = [
            {"subscriber_id": subscriber_id, "topic": topic}
            for subscriber_id, topics in zip(ids, new_topics, strict=True)
            for topic in topics
        ]
        if topic_rows:
            connection.execute(insert(subscriber_topics), topic_rows)
    if changed_rows:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("b_id"))
            .values(
                name=bindparam("name"),
                attributes=bindparam("attributes"),
                updated_at=bindparam("updated_at"),
            ),
            changed_rows,
        )
    if added_topics:
        connection.execute(insert(subscriber_topics), added_topics)
    if opt_outs:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("b_id"))
            .values(
                status=bindparam("status"),
                unsubscribed_at=bindparam("unsubscribed_at"),
                unsubscribe_source=bindparam("unsubscribe_source"),
                unsubscribe_reason=bindparam("unsubscribe_reason"),
                updated_at=bindparam("updated_at"),
            ),
            opt_outs,
        )
    if events:
        connection.execute(insert(subscriber_events), events)
    return outcomes


def _new_row(candidate: Candidate, key: str, when: dt.datetime) -> dict[str, Any]:
    opted_out = candidate.status == "unsubscribed"
    return {
        "email": candidate.email,
        "email_key": key,
        "name": candidate.name,
        "status": candidate.status,
        "attributes": candidate.attributes,
        "created_at": when,
        "updated_at": when,
        "source": candidate.source,
        # The original opt-in time, when the file knows it, is the consent on record.
        "opt_in_at": candidate.subscribed_at or when,
        "opt_in_ip": None,
        "confirmed_at": None,
        "confirmed_ip": None,
        "unsubscribed_at": when if opted_out else None,
        "unsubscribe_source": candidate.source if opted_out else None,
        "unsubscribe_reason": "imported as unsubscribed" if opted_out else None,
        "unsubscribe_campaign_id": None,
    }


def _opt_out(subscriber_id: int, candidate: Candidate, when: dt.datetime) -> dict[str, Any]:
    opted_out = candidate.status == "unsubscribed"
    return {
        "b_id": subscriber_id,
        "status": candidate.status,
        "unsubscribed_at": when if opted_out else None,
        "unsubscribe_source": candidate.source if opted_out else None,
        "unsubscribe_reason": "imported as unsubscribed" if opted_out else None,
        "updated_at": when,
    }


def _event(
    subscriber_id: int, event: str, source: str, when: dt.datetime, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "at": when,
        "event": event,
        "source": source,
        "ip": None,
        "detail": detail,
    }
