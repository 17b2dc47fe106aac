"""What came back from a mailbox, recorded: bounces, complaints, mailto unsubscribes.

Migration 7's tables live here (on the shared metadata, so their foreign keys resolve)
rather than in :mod:`newsletter.store.schema`, together with the one function that
writes them: :func:`record_returns` applies a chunk of classified messages in one
transaction, because a mailbox of ten thousand bounces must not cost ten thousand
commits.

- ``mailbox_messages``: one row per message already processed (a SHA-256 of its
  Message-ID, or of its bytes when it has none), so reading the same message again,
  from a POP3 box that cannot flag it or after a crash before the flag was set,
  changes nothing.
- ``soft_bounces``: one row per (subscriber, campaign) that soft-bounced; reaching
  ``bounces.soft_bounce_limit`` campaigns marks the subscriber bounced. Counting
  campaigns, not reports, means an MTA's repeated "still trying" notices count once.
- ``campaign_handovers``: per campaign and provider, how many messages were handed
  over (``newsletter status`` shows it, so a resumed campaign cannot hide where its
  mail went).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Column, Connection, ForeignKey, Integer, String, Table, func, select, update

from newsletter.store.schema import Id, UtcDateTime, campaigns, ledger, metadata, subscribers
from newsletter.store.subscribers import (
    Store,
    _log,
    _transition,
    insert_ignoring_duplicates,
    now,
)

mailbox_messages = Table(
    "mailbox_messages",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("processed_at", UtcDateTime, nullable=False),
)

soft_bounces = Table(
    "soft_bounces",
    metadata,
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("campaign_id", Id, primary_key=True, autoincrement=False),  # 0: no campaign
    Column("at", UtcDateTime, nullable=False),
)

campaign_handovers = Table(
    "campaign_handovers",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey(campaigns.c.id, ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("provider", String(32), primary_key=True),
    Column("count", Integer, nullable=False),
)


@dataclass(frozen=True)
class Return:
    """One classified message; ``subscriber_id`` (from a signed token) when it is acted on.

    ``kind`` is one of :data:`newsletter.mailbox.classify.Kind`; kinds without a
    subscriber (auto-replies, unrecognised mail) are only remembered as seen.
    """

    message_key: str
    kind: str
    subscriber_id: int | None = None
    campaign_id: int | None = None
    reason: str = ""


@dataclass
class Recorded:
    """What a chunk changed; ``duplicates`` were processed by an earlier run."""

    duplicates: set[int] = field(default_factory=set)  # positions in the chunk
    bounced: int = 0  # subscribers marked bounced (hard, or soft past the limit)
    complained: int = 0
    unsubscribed: int = 0
    ledger_failed: int = 0  # ledger rows turned failed by a hard bounce


def record_returns(store: Store, returns: Sequence[Return], *, soft_bounce_limit: int) -> Recorded:
    """Apply ``returns`` in one transaction; a message already recorded changes nothing."""
    recorded = Recorded()
    if not returns:
        return recorded
    when = now()
    with store.engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            seen = set(
                connection.scalars(
                    select(mailbox_messages.c.message_key).where(
                        mailbox_messages.c.message_key.in_([r.message_key for r in returns])
                    )
                )
            )
            new_rows: list[dict[str, object]] = []
            for position, item in enumerate(returns):
                if item.message_key in seen:
                    recorded.duplicates.add(position)
                    continue
                seen.add(item.message_key)
                new_rows.append(
                    {"message_key": item.message_key, "kind": item.kind, "processed_at": when}
                )
                if item.subscriber_id is not None:
                    _apply(connection, item, item.subscriber_id, when, soft_bounce_limit, recorded)
            if new_rows:
                connection.execute(mailbox_messages.insert(), new_rows)
    return recorded


def _apply(
    connection: Connection,
    item: Return,
    subscriber_id: int,
    when: dt.datetime,
    limit: int,
    recorded: Recorded,
) -> None:
    if item.kind == "unsubscribe":
        if _transition(
            connection,
            subscriber_id,
            subscribers.c.status.in_(("pending", "active")),
            status="unsubscribed",
            unsubscribed_at=when,
            unsubscribe_source="mailto",
            unsubscribe_reason="",
            unsubscribe_campaign_id=item.campaign_id,
            updated_at=when,
        ):
            recorded.unsubscribed += 1
            detail = {"campaign_id": item.campaign_id} if item.campaign_id else {}
            _log(connection, subscriber_id, "unsubscribed", source="mailto", at=when, detail=detail)
        return
    if item.kind == "complaint":
        if _mark(connection, subscriber_id, "complained", item.reason, when):
            recorded.complained += 1
        return
    if item.kind == "soft_bounce":
        exists = connection.scalar(
            select(subscribers.c.id).where(subscribers.c.id == subscriber_id)
        )
        if exists is None:  # erased since: nothing to count against
            return
        insert_ignoring_duplicates(
            connection,
            soft_bounces,
            [{"subscriber_id": subscriber_id, "campaign_id": item.campaign_id or 0, "at": when}],
        )
        count = connection.scalar(
            select(func.count())
            .select_from(soft_bounces)
            .where(soft_bounces.c.subscriber_id == subscriber_id)
        )
        if (count or 0) >= limit:
            reason = f"{count} campaigns soft-bounced; last: {item.reason}"
            if _mark(connection, subscriber_id, "bounced", reason, when):
                recorded.bounced += 1
        return
    # A hard bounce: the address is gone, and this campaign's copy was not delivered.
    if _mark(connection, subscriber_id, "bounced", item.reason, when):
        recorded.bounced += 1
    if item.campaign_id is not None:
        recorded.ledger_failed += connection.execute(
            update(ledger)
            .where(
                ledger.c.campaign_id == item.campaign_id,
                ledger.c.subscriber_id == subscriber_id,
                ledger.c.state.in_(("sent", "unknown", "in_flight")),
            )
            .values(state="failed", error=f"bounced: {item.reason}"[:1000], updated_at=when)
        ).rowcount


def _mark(
    connection: Connection, subscriber_id: int, status: str, reason: str, when: dt.datetime
) -> bool:
    """``Store.mark`` inside the caller's transaction: a complaint is never downgraded."""
    keep = ("bounced", "complained") if status == "bounced" else ("complained",)
    changed = _transition(
        connection, subscriber_id, subscribers.c.status.not_in(keep), status=status, updated_at=when
    )
    if changed:
        detail = {"reason": reason} if reason else {}
        _log(connection, subscriber_id, status, source="mailbox", at=when, detail=detail)
    return changed


def add_handovers(store: Store, campaign_id: int, provider: str, count: int) -> None:
    """Count ``count`` more messages handed to ``provider`` for the campaign."""
    if count <= 0:
        return
    with store.engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            changed = connection.execute(
                update(campaign_handovers)
                .where(
                    campaign_handovers.c.campaign_id == campaign_id,
                    campaign_handovers.c.provider == provider,
                )
                .values(count=campaign_handovers.c.count + count)
            ).rowcount
            if not changed:
                connection.execute(
                    campaign_handovers.insert().values(
                        campaign_id=campaign_id, provider=provider, count=count
                    )
                )


def handovers(store: Store, campaign_id: int) -> dict[str, int]:
    """``provider -> messages handed over`` for one campaign."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(campaign_handovers.c.provider, campaign_handovers.c.count)
            .where(campaign_handovers.c.campaign_id == campaign_id)
            .order_by(campaign_handovers.c.provider)
        )
        return {provider: count for provider, count in rows}


def set_campaign_provider(store: Store, campaign_id: int, provider: str) -> None:
    """The campaign goes on through ``provider`` (``newsletter send --switch-provider``)."""
    with store.engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            connection.execute(
                update(campaigns).where(campaigns.c.id == campaign_id).values(provider=provider)
            )
