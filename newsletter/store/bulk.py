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
import functools
import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Connection, Select, String, any_, bindparam, select, update
from sqlalchemy.dialects import postgresql

from newsletter.store.addresses import address_key
from newsletter.store.bulk_plan import (
    BulkOutcome,
    Candidate,
    ChunkPlan,
    Found,
    event_row,
    plan_chunk,
)
from newsletter.store.fast_insert import insert_many
from newsletter.store.schema import subscriber_events, subscriber_topics, subscribers, suppressions
from newsletter.store.statuses import change_statuses


class _Lookups(NamedTuple):
    erased: Select[Any]
    existing: Select[Any]
    topics_of: Select[Any]
    ids: Select[Any]


@functools.cache
def _lookups(postgres: bool) -> _Lookups:
    """The chunk's look-ups. Each list of keys is one parameter: on PostgreSQL an array
    (``= ANY(...)``), elsewhere an expanding ``IN``. (An ``IN`` of a thousand
    parameters costs SQLAlchemy and psycopg a third of a PostgreSQL import's time to
    render and parse; building ``column.in_(values)`` anew per chunk would cost more.)
    """

    def member_of(column: Any, name: str, item_type: Any) -> Any:
        if postgres:
            return column == any_(bindparam(name, type_=postgresql.ARRAY(item_type)))
        return column.in_(bindparam(name, expanding=True))

    return _Lookups(
        erased=select(suppressions.c.email_hash).where(
            member_of(suppressions.c.email_hash, "hashes", String())
        ),
        existing=select(
            subscribers.c.id,
            subscribers.c.email_key,
            subscribers.c.name,
            subscribers.c.status,
            subscribers.c.attributes,
        ).where(member_of(subscribers.c.email_key, "keys", String())),
        topics_of=select(subscriber_topics.c.subscriber_id, subscriber_topics.c.topic).where(
            member_of(subscriber_topics.c.subscriber_id, "ids", BigInteger())
        ),
        ids=select(subscribers.c.email_key, subscribers.c.id).where(
            member_of(subscribers.c.email_key, "keys", String())
        ),
    )


def merge_chunk(
    connection: Connection, candidates: Sequence[Candidate], when: dt.datetime
) -> list[BulkOutcome]:
    """Apply one chunk (addresses unique within it); the outcome of each, in order.

    Three steps: read what the database holds of these addresses, decide (in
    :func:`plan_chunk`, without the database) what each row means, then write it all.
    """
    lookups = _lookups(connection.dialect.name == "postgresql")
    keys = [address_key(candidate.email) for candidate in candidates]
    found = _read(connection, lookups, keys)
    plan = plan_chunk(candidates, keys, found, when)
    return _write(connection, lookups, plan, when)


def read_chunk(connection: Connection, keys: list[str]) -> Found:
    """What the database holds of these look-up keys (for a dry run's plan)."""
    return _read(connection, _lookups(connection.dialect.name == "postgresql"), keys)


def _read(connection: Connection, lookups: _Lookups, keys: list[str]) -> Found:
    hashes = {hashlib.sha256(key.encode("utf-8")).hexdigest(): key for key in keys}
    erased = {
        hashes[digest] for digest in connection.scalars(lookups.erased, {"hashes": list(hashes)})
    }
    existing = {row.email_key: row for row in connection.execute(lookups.existing, {"keys": keys})}
    topics: dict[int, set[str]] = {}
    if existing:
        ids = [row.id for row in existing.values()]
        for subscriber_id, topic in connection.execute(lookups.topics_of, {"ids": ids}):
            topics.setdefault(subscriber_id, set()).add(topic)
    return Found(erased, existing, topics)


def _write(
    connection: Connection, lookups: _Lookups, plan: ChunkPlan, when: dt.datetime
) -> list[BulkOutcome]:
    """Write a plan with a few set-based statements; the outcomes, as they turned out."""
    events = plan.events
    if plan.new_rows:
        # An executemany, then one SELECT for the new ids: on SQLite, RETURNING with
        # many rows in a guaranteed order would cost one statement per row.
        insert_many(
            connection, subscribers, plan.new_rows, {"created_at": when, "updated_at": when}
        )
        new_keys = [row["email_key"] for row in plan.new_rows]
        id_of: dict[str, int] = {
            key: subscriber_id
            for key, subscriber_id in connection.execute(lookups.ids, {"keys": new_keys})
        }
        topic_rows = [
            {"subscriber_id": id_of[key], "topic": topic}
            for key, topics in zip(new_keys, plan.new_topics, strict=True)
            for topic in topics
        ]
        insert_many(connection, subscriber_topics, topic_rows)
        # An opt-out brought over keeps the source's time and reason in the history.
        events = events + [
            event_row(
                id_of[address_key(candidate.email)],
                candidate.status,
                candidate.source,
                candidate.status_at or when,
                {"reason": candidate.reason} if candidate.reason else {},
            )
            for candidate in plan.new_opt_outs
        ]
    if plan.changed_rows:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("b_id"))
            .values(
                name=bindparam("name"),
                attributes=bindparam("attributes"),
                updated_at=bindparam("updated_at"),
            ),
            plan.changed_rows,
        )
    insert_many(connection, subscriber_topics, plan.added_topics)
    insert_many(connection, subscriber_events, events)
    # Read as pending or active above, but the write decides: someone else may have
    # suppressed them meanwhile, and then the stronger status stays.
    outcomes = list(plan.outcomes)
    moved = {c.subscriber_id for c in change_statuses(connection, plan.opt_outs, when=when)}
    for subscriber_id, position in plan.only_opting_out.items():
        if subscriber_id not in moved:
            outcomes[position] = "suppressed"
    return outcomes
