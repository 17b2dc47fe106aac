"""Rows of the subscriber tables: the SQL pieces that the store's reads and changes,
the ledger's snapshot and the web app share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    exists,
    func,
    insert,
    select,
    true,
)

from newsletter.errors import StoreError
from newsletter.store.addresses import address_key, normalize_address
from newsletter.store.database import insert_on_conflict
from newsletter.store.schema import subscriber_events, subscriber_topics, subscribers, suppressions

# What a Subscriber needs: streaming reads skip the consent columns' parsing.
SUBSCRIBER_COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.status,
    subscribers.c.attributes,
    subscribers.c.link_key,
)


def subscriber_condition(
    *, status: str | None = None, topics: Sequence[str] | None = None
) -> ColumnElement[bool]:
    """Subscribers of ``status`` (any, if None) with any of ``topics`` (any, if None), as
    SQL: the one definition of "who is a recipient" (``status="active"``), shared by
    :meth:`Store.recipients` and the campaign snapshot in :mod:`newsletter.send.ledger`.
    ``topics`` are taken as given (:meth:`Store.check_topics` validates them); an empty
    list matches nobody."""
    condition: ColumnElement[bool] = true()
    if status is not None:
        condition = subscribers.c.status == status
    if topics is not None:
        condition = condition & exists().where(
            subscriber_topics.c.subscriber_id == subscribers.c.id,
            subscriber_topics.c.topic.in_(list(topics)),
        )
    return condition


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def unknown_topic_message(topic: str, known: Sequence[str]) -> str:
    if not known:
        return (
            f"unknown topic {topic!r}: newsletter.yaml defines no topics; "
            "add them under 'topics:' in newsletter.yaml"
        )
    return (
        f"unknown topic {topic!r}; known topics: {', '.join(known)} "
        "(add new topics under 'topics:' in newsletter.yaml)"
    )


def insert_ignoring_duplicates(
    connection: Connection, table: Any, rows: list[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on either database."""
    if not rows:
        return
    connection.execute(insert_on_conflict(connection, table).on_conflict_do_nothing(), rows)


def link_matches(link_key: str | None) -> ColumnElement[bool]:
    """The rows a link carrying ``link_key`` may act on (None: a link without one)."""
    if link_key is None:
        return subscribers.c.legacy_links.is_(true())
    return subscribers.c.link_key == link_key


def lookup_key(email: str) -> str:
    """The key to look an address up by; a malformed address simply matches nothing."""
    try:
        return address_key(normalize_address(email))
    except StoreError:
        return email.strip().lower()


def hash_suppressed(connection: Connection, digest: str) -> bool:
    found = connection.scalar(
        select(func.count()).select_from(suppressions).where(suppressions.c.email_hash == digest)
    )
    return bool(found)


def insert_topics(connection: Connection, subscriber_id: int, topics: Sequence[str]) -> None:
    # A concurrent merge may have added the same topic a moment ago: that is fine.
    insert_ignoring_duplicates(
        connection,
        subscriber_topics,
        [{"subscriber_id": subscriber_id, "topic": topic} for topic in topics],
    )


def topics_of(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    if not ids:
        return {}
    rows = connection.execute(
        select(subscriber_topics.c.subscriber_id, subscriber_topics.c.topic)
        .where(subscriber_topics.c.subscriber_id.in_(ids))
        .order_by(subscriber_topics.c.subscriber_id, subscriber_topics.c.topic)
    )
    for subscriber_id, topic in rows:
        found.setdefault(subscriber_id, []).append(topic)
    return {subscriber_id: tuple(topics) for subscriber_id, topics in found.items()}


def log_event(
    connection: Connection,
    subscriber_id: int,
    event: str,
    *,
    source: str = "",
    ip: str | None = None,
    at: dt.datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        insert(subscriber_events).values(
            subscriber_id=subscriber_id,
            at=at or now(),
            event=event,
            source=source,
            ip=ip,
            detail=detail or {},
        )
    )


def record_of(row: Row[Any], topics: Sequence[str]) -> dict[str, Any]:
    return {
        "email": row.email,
        "name": row.name,
        "status": row.status,
        "topics": list(topics),
        "attributes": dict(row.attributes),
        "source": row.source,
        "subscribed_at": iso(row.opt_in_at),
        "subscribed_ip": row.opt_in_ip,
        "confirmed_at": iso(row.confirmed_at),
        "confirmed_ip": row.confirmed_ip,
        "unsubscribed_at": iso(row.unsubscribed_at),
        "unsubscribe_source": row.unsubscribe_source,
        "unsubscribe_reason": row.unsubscribe_reason,
        "unsubscribe_campaign_id": row.unsubscribe_campaign_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# What resubscribing or restarting a signup clears: the last unsubscribe's record.
NOT_UNSUBSCRIBED: dict[str, Any] = {
    "unsubscribed_at": None,
    "unsubscribe_source": None,
    "unsubscribe_reason": None,
    "unsubscribe_campaign_id": None,
}
