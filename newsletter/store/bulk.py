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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Row,
    Select,
    String,
    Table,
    any_,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql

from newsletter.models import SUPPRESSED_STATUSES
from newsletter.store.addresses import address_key
from newsletter.store.schema import (
    new_link_key,
    subscriber_events,
    subscriber_topics,
    subscribers,
    suppressions,
)
from newsletter.store.statuses import StatusChange, change_statuses

BulkOutcome = Literal["added", "updated", "unchanged", "suppressed"]


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


class Candidate(NamedTuple):
    """One validated row: an address (normalised) and what the file says about it.

    A named tuple rather than a dataclass: an import makes one per row, and a frozen
    dataclass takes several times as long to build.
    """

    email: str
    name: str = ""
    topics: tuple[str, ...] = ()
    status: str = "active"
    source: str = "import"
    subscribed_at: dt.datetime | None = None
    attributes: Mapping[str, str] = MappingProxyType({})
    # The consent record another platform kept, where the file has it.
    subscribed_ip: str | None = None
    confirmed_at: dt.datetime | None = None
    confirmed_ip: str | None = None
    status_at: dt.datetime | None = None  # when they unsubscribed, bounced or complained
    reason: str | None = None  # why, in the source's words (None: not given)
    status_source: str | None = None  # who recorded the opt-out, if not this import


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


class Found(NamedTuple):
    """What the database holds of a chunk's addresses."""

    erased: set[str]  # look-up keys whose address was erased (its hash is suppressed)
    existing: dict[str, Row[Any]]  # look-up key -> id, email_key, name, status, attributes
    topics: dict[int, set[str]]  # existing subscriber id -> its topics


@dataclass
class ChunkPlan:
    """What merging a chunk writes, and the outcome of each of its rows."""

    outcomes: list[BulkOutcome] = field(default_factory=list)
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    new_topics: list[tuple[str, ...]] = field(default_factory=list)  # per new row
    new_opt_outs: list[Candidate] = field(default_factory=list)  # new rows arriving suppressed
    changed_rows: list[dict[str, Any]] = field(default_factory=list)  # name, attributes
    added_topics: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    opt_outs: list[StatusChange] = field(default_factory=list)  # existing rows leaving
    # Existing rows whose only change is leaving: subscriber id -> position of its outcome.
    only_opting_out: dict[int, int] = field(default_factory=dict)


def plan_chunk(
    candidates: Sequence[Candidate], keys: Sequence[str], found: Found, when: dt.datetime
) -> ChunkPlan:
    """Decide what each candidate means, given what :func:`_read` found (no database)."""
    plan = ChunkPlan()
    for candidate, key in zip(candidates, keys, strict=True):
        row = found.existing.get(key)
        if key in found.erased or (row is not None and row.status in SUPPRESSED_STATUSES):
            plan.outcomes.append("suppressed")
        elif row is None:
            plan.new_rows.append(_new_row(candidate, key, when))
            plan.new_topics.append(candidate.topics)
            if candidate.status in SUPPRESSED_STATUSES:
                plan.new_opt_outs.append(candidate)
            plan.outcomes.append("added")
        else:
            _plan_merge(plan, candidate, row, found.topics.get(row.id, set()), when)
    return plan


def _plan_merge(
    plan: ChunkPlan, candidate: Candidate, row: Row[Any], topics: set[str], when: dt.datetime
) -> None:
    """A pending or active subscriber: what the file adds, and an opt-out it records."""
    merged_attributes = {**row.attributes, **candidate.attributes}
    name = candidate.name or row.name
    extra_topics = [t for t in candidate.topics if t not in topics]
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
        plan.outcomes.append("unchanged")
        return
    if changed_fields or extra_topics:
        plan.changed_rows.append(
            {"b_id": row.id, "name": name, "attributes": merged_attributes, "updated_at": when}
        )
        plan.added_topics.extend({"subscriber_id": row.id, "topic": t} for t in extra_topics)
        plan.events.append(
            _event(
                row.id,
                "updated",
                candidate.source,
                when,
                {"fields": changed_fields, "topics_added": extra_topics},
            )
        )
    elif opting_out:
        plan.only_opting_out[row.id] = len(plan.outcomes)
    if opting_out:
        plan.opt_outs.append(_opt_out(row.id, candidate))
    plan.outcomes.append("updated")


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
            _event(
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


def insert_many(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    shared: Mapping[str, Any] = MappingProxyType({}),
) -> None:
    """INSERT ``rows``, each with the ``shared`` values too, by the driver's executemany.

    SQLAlchemy's per-row parameter handling costs about 25 µs a row, most of an
    import's time. Here values go to the driver after only their column's bind
    processor (datetimes to text on SQLite, JSON), and shared values and empty JSON
    objects are converted once. Columns a row does not name are left to their default.
    """
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(row), []).append(row)
    for same_columns in by_columns.values():
        _insert_same_columns(connection, table, same_columns, shared)


def _insert_same_columns(
    connection: Connection, table: Table, rows: list[dict[str, Any]], shared: Mapping[str, Any]
) -> None:
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=[*rows[0], *shared])
    order = (
        [compiled.binds[name].key for name in compiled.positiontup or ()]
        if compiled.positional
        else [*rows[0], *shared]
    )
    processor = {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    }

    def driver_value(name: str, value: Any) -> Any:
        convert = processor[name]
        return value if convert is None or value is None else convert(value)

    template = [driver_value(name, shared[name]) if name in shared else None for name in order]
    per_row = [
        (index, name, processor[name]) for index, name in enumerate(order) if name not in shared
    ]
    empty_json = {
        name: driver_value(name, {}) for name in order if isinstance(table.c[name].type, JSON)
    }
    value_rows: list[list[Any]] = []
    for row in rows:
        values = template.copy()
        for index, name, convert in per_row:
            value = row[name]
            if value is None or convert is None:  # most consent columns are empty
                values[index] = value
            elif value == {} and name in empty_json:  # most rows have no attributes
                values[index] = empty_json[name]
            else:
                values[index] = convert(value)
        value_rows.append(values)
    cursor = connection.connection.cursor()
    try:
        if dialect.name == "postgresql":
            # COPY: a third of executemany's time, which psycopg spends in Python per row.
            from psycopg import sql as psycopg_sql  # only installed for PostgreSQL

            statement = psycopg_sql.SQL("COPY {} ({}) FROM STDIN").format(
                psycopg_sql.Identifier(table.name),
                psycopg_sql.SQL(", ").join(map(psycopg_sql.Identifier, order)),
            )
            with cursor.copy(statement) as copy:
                for values in value_rows:
                    copy.write_row(values)
        else:
            cursor.executemany(
                str(compiled),
                value_rows
                if compiled.positional
                else [dict(zip(order, values, strict=True)) for values in value_rows],
            )
    finally:
        cursor.close()


def _new_row(candidate: Candidate, key: str, when: dt.datetime) -> dict[str, Any]:
    # Every row names the same columns, so that a chunk is one executemany.
    return {
        "email": candidate.email,
        "email_key": key,
        "name": candidate.name,
        "status": candidate.status,
        "attributes": dict(candidate.attributes),
        "source": candidate.source,
        # The original opt-in time, when the file knows it, is the consent on record.
        "opt_in_at": candidate.subscribed_at or when,
        "opt_in_ip": candidate.subscribed_ip,
        "confirmed_at": candidate.confirmed_at,
        "confirmed_ip": candidate.confirmed_ip,
        **_unsubscribe_record(candidate, when),
        "link_key": new_link_key(),
        "legacy_links": False,
        # The editor vouches for an imported subscriber (unsubscribed ones included:
        # they were subscribers where the list came from); a pending one must confirm.
        "was_active": candidate.status != "pending",
    }


def _opt_out(subscriber_id: int, candidate: Candidate) -> StatusChange:
    """An existing subscriber leaving as the file says (if the status rules allow it)."""
    return StatusChange(
        subscriber_id,
        candidate.status,
        candidate.source,
        _reason(candidate),
        at=candidate.status_at,
        unsubscribe_source=candidate.status_source,
    )


def _unsubscribe_record(candidate: Candidate, when: dt.datetime) -> dict[str, Any]:
    if candidate.status != "unsubscribed":
        return {"unsubscribed_at": None, "unsubscribe_source": None, "unsubscribe_reason": None}
    return {
        "unsubscribed_at": candidate.status_at or when,
        "unsubscribe_source": candidate.status_source or candidate.source,
        "unsubscribe_reason": _reason(candidate),
    }


def _reason(candidate: Candidate) -> str:
    if candidate.reason is None and candidate.status == "unsubscribed":
        return "imported as unsubscribed"
    return candidate.reason or ""


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
