"""Campaigns as the ledger sees them: starting one (the recipients' snapshot), finding
and listing them, who an issue's audience is, and what the ledger counts for each.
Where their mail went (the provider, its hand-overs) is
:mod:`newsletter.send.handovers`'.

The recipients' states themselves, batch by batch, are :mod:`newsletter.send.ledger`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.models import SUPPRESSED_STATUSES
from newsletter.store import Store
from newsletter.store.schema import (
    LEDGER_STATES,
    campaign_engagement,
    campaigns,
    ledger,
    subscribers,
)
from newsletter.store.subscriber_rows import subscriber_condition


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def engine_of(store: Store | Engine) -> Engine:
    """The engine of a store (functions here take either)."""
    return store.engine if isinstance(store, Store) else store


def write_connection(engine: Engine) -> Connection:
    """A write transaction (on SQLite, the write lock is taken at BEGIN)."""
    return engine.connect().execution_options(write=True)


@dataclass(frozen=True)
class Campaign:
    id: int
    slug: str
    issue_path: str
    subject: str
    topics: tuple[str, ...]  # () = every active subscriber
    provider: str
    recipients: int
    created_at: dt.datetime
    finished_at: dt.datetime | None
    last_error: str | None


def _campaign(row: Any) -> Campaign:
    return Campaign(
        id=row.id,
        slug=row.slug,
        issue_path=row.issue_path,
        subject=row.subject,
        topics=tuple(row.topics),
        provider=row.provider,
        recipients=row.recipients,
        created_at=row.created_at,
        finished_at=row.finished_at,
        last_error=row.last_error,
    )


def find_campaign(store: Store | Engine, slug: str) -> Campaign | None:
    with engine_of(store).connect() as connection:
        row = connection.execute(select(campaigns).where(campaigns.c.slug == slug)).one_or_none()
    return None if row is None else _campaign(row)


def list_campaigns(store: Store | Engine) -> list[Campaign]:
    with engine_of(store).connect() as connection:
        rows = connection.execute(select(campaigns).order_by(campaigns.c.id)).all()
    return [_campaign(row) for row in rows]


def recipient_condition(topics: Sequence[str], where: Any = None) -> Any:
    """Who a campaign goes to: active subscribers, of any of ``topics`` if there are any
    (a campaign's empty topic list means everyone), and of the segment whose condition
    ``where`` is, if there is one: a segment only ever narrows. The store's own rule, as
    SQL, so the snapshot is one ``INSERT ... SELECT`` (a million rows never pass through
    Python).
    """
    condition = subscriber_condition(status="active", topics=topics or None)
    return condition if where is None else condition & where


@dataclass(frozen=True)
class Audience:
    """Who a new campaign for some topics would reach, for the plan shown before sending."""

    recipients: int
    by_topic: dict[str, int]  # active subscribers of each topic (one person may count twice)
    suppressed: int  # unsubscribed, bounced or complained: left out
    without_topics: int = 0  # active, but with none of the topics: left out too
    outside_segment: int = 0  # active readers of the topics outside the segment: left out


def audience(store: Store | Engine, topics: Sequence[str], where: Any = None) -> Audience:
    """Who a campaign would reach; ``where``: a segment's condition, which only narrows
    (``by_topic``, ``suppressed`` and ``without_topics`` count as without it)."""
    with engine_of(store).connect() as connection:
        outside_segment = 0
        chosen: int | None = 0
        if where is not None:
            chosen = connection.scalar(
                select(func.count())
                .select_from(subscribers)
                .where(recipient_condition(topics, where))
            )
        recipients = connection.scalar(
            select(func.count()).select_from(subscribers).where(recipient_condition(topics))
        )
        if where is not None:
            outside_segment = (recipients or 0) - (chosen or 0)
        # An issue of one topic (the usual case) reaches exactly that topic's readers:
        # counted once, not twice (each count reads the whole list).
        by_topic = (
            {topics[0]: recipients or 0}
            if len(topics) == 1
            else {
                topic: connection.scalar(
                    select(func.count())
                    .select_from(subscribers)
                    .where(recipient_condition([topic]))
                )
                or 0
                for topic in topics
            }
        )
        suppressed = connection.scalar(
            select(func.count())
            .select_from(subscribers)
            .where(
                subscribers.c.status.in_(sorted(SUPPRESSED_STATUSES)),
                subscriber_condition(topics=topics or None),
            )
        )
        without_topics = 0
        if topics:  # so that nobody disappears from a topic send silently
            active = connection.scalar(
                select(func.count()).select_from(subscribers).where(recipient_condition([]))
            )
            without_topics = (active or 0) - (recipients or 0)
    return Audience(
        (recipients or 0) if where is None else (chosen or 0),
        by_topic,
        suppressed or 0,
        without_topics,
        outside_segment,
    )


def start_campaign(
    store: Store | Engine,
    *,
    slug: str,
    issue_path: str,
    subject: str,
    topics: Sequence[str],
    provider: str,
    where: Any = None,
    after_snapshot: Callable[[Connection, int], None] | None = None,
) -> Campaign:
    """Create the campaign and snapshot its recipients, in one transaction; ``where``:
    a segment's condition (see :func:`recipient_condition`); ``after_snapshot(connection,
    campaign_id)``: more to write in the same transaction (a subject test's sample).

    If another process created it first, that campaign is returned instead.
    """
    engine = engine_of(store)
    started = now()
    try:
        with write_connection(engine) as connection, connection.begin():
            campaign_id = connection.scalar(
                insert(campaigns)
                .values(
                    slug=slug,
                    issue_path=issue_path,
                    subject=subject,
                    topics=list(topics),
                    provider=provider,
                    recipients=0,
                    created_at=started,
                )
                .returning(campaigns.c.id)
            )
            snapshot = select(
                literal(campaign_id),
                subscribers.c.id,
                literal("pending"),
                literal(0),
                literal(started, type_=ledger.c.updated_at.type),
            ).where(recipient_condition(topics, where))
            connection.execute(
                insert(ledger).from_select(
                    ["campaign_id", "subscriber_id", "state", "attempts", "updated_at"], snapshot
                )
            )
            count = connection.scalar(
                select(func.count()).select_from(ledger).where(ledger.c.campaign_id == campaign_id)
            )
            connection.execute(
                update(campaigns).where(campaigns.c.id == campaign_id).values(recipients=count)
            )
            if after_snapshot is not None:
                after_snapshot(connection, campaign_id)
    except IntegrityError:
        pass  # another process started this campaign a moment ago: use theirs
    campaign = find_campaign(engine, slug)
    assert campaign is not None
    return campaign


def state_counts(store: Store | Engine, campaign_id: int) -> dict[str, int]:
    with engine_of(store).connect() as connection:
        rows = connection.execute(
            select(ledger.c.state, func.count())
            .where(ledger.c.campaign_id == campaign_id)
            .group_by(ledger.c.state)
        ).all()
    found: dict[str, int] = {state: count for state, count in rows}
    return {state: found.get(state, 0) for state in LEDGER_STATES}


def handed_over(counts: Mapping[str, int]) -> int:
    """The one meaning of "handed over" (``report``'s HANDED OVER, ``schedule --all``,
    ``schedule cancel``): copies the provider accepted, the ledger's ``sent``. A
    ``failed`` copy was refused, not handed over; an unknown one may have been, and is
    said by its own name (:func:`outcome_unknown`)."""
    return counts["sent"]


def outcome_unknown(counts: Mapping[str, int]) -> int:
    """Copies that may or may not have reached the provider: ``unknown``, and
    ``in_flight`` (with the provider now, or left so by a process that died)."""
    return counts["unknown"] + counts["in_flight"]


def first_errors(store: Store | Engine, campaign_id: int, limit: int = 3) -> list[tuple[str, str]]:
    """(address or ``#id`` of an erased subscriber, error) of the first failed recipients."""
    with engine_of(store).connect() as connection:
        rows = connection.execute(
            select(ledger.c.subscriber_id, subscribers.c.email, ledger.c.error)
            .outerjoin(subscribers, subscribers.c.id == ledger.c.subscriber_id)
            .where(
                ledger.c.campaign_id == campaign_id,
                ledger.c.error.is_not(None),
                ledger.c.state.in_(("failed", "unknown", "pending")),
            )
            .order_by(ledger.c.subscriber_id)
            .limit(limit)
        ).all()
    return [(email or f"#{subscriber_id}", error) for subscriber_id, email, error in rows]


def reactions(store: Store | Engine, campaign_id: int) -> dict[str, int]:
    """What readers did after the campaign: ``unsubscribed`` through it (its links or the
    provider's; erased subscribers no longer count), and the ``open``/``click`` totals
    the provider's webhook reported (zero unless its tracking is on,
    :attr:`newsletter.config.Config.provider_tracking`)."""
    with engine_of(store).connect() as connection:
        unsubscribed = connection.scalar(
            select(func.count())
            .select_from(subscribers)
            .where(
                subscribers.c.unsubscribe_campaign_id == campaign_id,
                subscribers.c.status == "unsubscribed",
            )
        )
        tracked = connection.execute(
            select(campaign_engagement.c.event, campaign_engagement.c.count).where(
                campaign_engagement.c.campaign_id == campaign_id
            )
        ).all()
    found: dict[str, int] = {event: count for event, count in tracked}
    return {
        "unsubscribed": unsubscribed or 0,
        "open": found.get("open", 0),
        "click": found.get("click", 0),
    }


def sent_since(store: Store | Engine, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
    """How many messages went out at each moment since ``since``, over all campaigns
    (for the per-hour and per-day caps of the next run)."""
    with engine_of(store).connect() as connection:
        rows = connection.execute(
            select(ledger.c.sent_at, func.count())
            .where(ledger.c.sent_at >= since)
            .group_by(ledger.c.sent_at)
        ).all()
    return [(at, count) for at, count in rows]
