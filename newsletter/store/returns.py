"""What came back from a mailbox, recorded: bounces, complaints, mailto unsubscribes.

Migration 6's tables (defined in :mod:`newsletter.store.schema`) and the functions that
write them: :func:`record_returns` applies a chunk of classified messages in one
transaction, because a mailbox of ten thousand bounces must not cost ten thousand
commits.

- ``mailbox_messages``: one row per message already processed (a SHA-256 of its
  Message-ID, or of its bytes when it has none), so reading the same message again,
  from a POP3 box that cannot flag it or after a crash before the flag was set,
  changes nothing.
- ``soft_bounces``: one row per (subscriber, campaign) that soft-bounced; reaching
  ``bounces.soft_bounce_limit`` campaigns marks the subscriber bounced. Counting
  campaigns, not reports, means an MTA's repeated "still trying" notices count once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    func,
    or_,
    select,
    true,
    update,
)

from newsletter.safe_text import clean_text
from newsletter.store.schema import (
    ledger,
    mailbox_messages,
    soft_bounces,
    subscribers,
)
from newsletter.store.statuses import StatusChange, change_statuses
from newsletter.store.subscriber_rows import insert_ignoring_duplicates, now
from newsletter.store.subscribers import Store

_LOOKUP_SLICE = 1000
# How a ledger row failed by what the mailbox read begins its error: a hard bounce, or
# a policy block (the receiving server refused the message or the sender, not the
# address: the subscriber stays, and ``--retry-failed`` sends the copy again).
BOUNCED = "bounced: "
BLOCKED = "blocked: "


@dataclass(frozen=True)
class Return:
    """One classified message; ``subscriber_id`` (from a signed token) when it is acted on.

    ``kind`` is one of :data:`newsletter.send.mailbox.classify.Kind`; kinds without a
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
    ledger_blocked: int = 0  # ledger rows turned failed by a policy block (no suppression)


def record_returns(store: Store, returns: Sequence[Return], *, soft_bounce_limit: int) -> Recorded:
    """Apply ``returns`` in one transaction; a message already recorded changes nothing.

    Set-based: a few statements per kind for the whole chunk, not a few per message
    (10,000 bounces in seconds). Within a chunk a complaint outranks a bounce, and a
    bounce an unsubscribe (:mod:`newsletter.store.statuses`). A policy block changes no
    status: it fails that campaign's ledger row (error ``blocked: ...``), nothing more.
    """
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
            fresh: list[Return] = []
            for position, item in enumerate(returns):
                if item.message_key in seen:
                    recorded.duplicates.add(position)
                    continue
                seen.add(item.message_key)
                # The reason is the returned message's text: printed later, so no
                # control characters (an ESC would drive the editor's terminal).
                fresh.append(replace(item, reason=clean_text(item.reason)))
            if not fresh:
                return recorded
            connection.execute(
                mailbox_messages.insert(),
                [
                    {"message_key": r.message_key, "kind": r.kind, "processed_at": when}
                    for r in fresh
                ],
            )
            by_kind: dict[str, dict[int, Return]] = {}
            for item in fresh:
                if item.subscriber_id is not None:
                    by_kind.setdefault(item.kind, {}).setdefault(item.subscriber_id, item)
            bounced = dict(by_kind.get("hard_bounce", {}))
            bounced |= _past_soft_limit(
                connection, by_kind.get("soft_bounce", {}), soft_bounce_limit, when
            )
            changed = Counter(
                change.to
                for change in change_statuses(
                    connection,
                    [
                        *_changes(by_kind.get("unsubscribe", {}), "unsubscribed", "mailto"),
                        *_changes(bounced, "bounced", "mailbox"),
                        *_changes(by_kind.get("complaint", {}), "complained", "mailbox"),
                    ],
                    when=when,
                )
            )
            recorded.bounced = changed["bounced"]
            recorded.complained = changed["complained"]
            recorded.unsubscribed = changed["unsubscribed"]
            recorded.ledger_failed = _fail_ledger_rows(
                connection, by_kind.get("hard_bounce", {}), when, BOUNCED
            )
            recorded.ledger_blocked = _fail_ledger_rows(
                connection, by_kind.get("blocked", {}), when, BLOCKED
            )
    return recorded


def processed_kinds(store: Store, keys: Iterable[str]) -> dict[str, str]:
    """``message_key -> kind`` of those of ``keys`` an earlier run processed."""
    wanted = sorted(set(keys))
    found: dict[str, str] = {}
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), _LOOKUP_SLICE):
            rows = connection.execute(
                select(mailbox_messages.c.message_key, mailbox_messages.c.kind).where(
                    mailbox_messages.c.message_key.in_(wanted[start : start + _LOOKUP_SLICE])
                )
            )
            found.update((key, kind) for key, kind in rows)
    return found


def link_keys(store: Store, ids: Iterable[int]) -> dict[int, str]:
    """``id -> link_key`` of those of ``ids`` that are subscribers (erased ones are not)."""
    wanted = sorted(set(ids))
    found: dict[int, str] = {}
    with store.engine.connect() as connection:
        # In slices: a message may be full of token-shaped text, and a statement has
        # a limit on its parameters.
        for start in range(0, len(wanted), _LOOKUP_SLICE):
            rows = connection.execute(
                select(subscribers.c.id, subscribers.c.link_key).where(
                    subscribers.c.id.in_(wanted[start : start + _LOOKUP_SLICE])
                )
            )
            found.update((subscriber_id, key) for subscriber_id, key in rows)
    return found


def _existing(
    connection: Connection, ids: Sequence[int], condition: ColumnElement[bool]
) -> list[int]:
    if not ids:
        return []
    return sorted(
        connection.scalars(select(subscribers.c.id).where(subscribers.c.id.in_(ids), condition))
    )


def _changes(items: dict[int, Return], to: str, source: str) -> list[StatusChange]:
    return [
        StatusChange(subscriber_id, to, source, item.reason, item.campaign_id)
        for subscriber_id, item in items.items()
    ]


def _past_soft_limit(
    connection: Connection, items: dict[int, Return], limit: int, when: dt.datetime
) -> dict[int, Return]:
    """Count each soft bounce once per campaign; the subscribers now at the limit."""
    ids = _existing(connection, list(items), true())  # erased since: nothing to count
    if not ids:
        return {}
    insert_ignoring_duplicates(
        connection,
        soft_bounces,
        [{"subscriber_id": i, "campaign_id": items[i].campaign_id or 0, "at": when} for i in ids],
    )
    counts = connection.execute(
        select(soft_bounces.c.subscriber_id, func.count())
        .where(soft_bounces.c.subscriber_id.in_(ids))
        .group_by(soft_bounces.c.subscriber_id)
    )
    return {
        subscriber_id: replace(
            items[subscriber_id],
            reason=f"{count} campaigns soft-bounced; last: {items[subscriber_id].reason}",
        )
        for subscriber_id, count in counts
        if count >= limit
    }


def _fail_ledger_rows(
    connection: Connection, items: dict[int, Return], when: dt.datetime, prefix: str
) -> int:
    """A hard bounce or a policy block means that campaign's copy was never delivered."""
    rows = [
        {
            "campaign": item.campaign_id,
            "row_id": subscriber_id,
            "error": f"{prefix}{item.reason}"[:1000],
        }
        for subscriber_id, item in items.items()
        if item.campaign_id is not None
    ]
    if not rows:
        return 0
    result = connection.execute(
        update(ledger)
        .where(
            ledger.c.campaign_id == bindparam("campaign"),
            ledger.c.subscriber_id == bindparam("row_id"),
            # Not IN (...): an expanding parameter cannot go into an executemany.
            or_(*(ledger.c.state == state for state in ("sent", "unknown", "in_flight"))),
        )
        .values(state="failed", error=bindparam("error"), updated_at=when),
        rows,
    )
    return max(result.rowcount, 0)


def blocked_copies(store: Store, campaign_id: int) -> int:
    """How many of the campaign's copies a receiving server refused as a policy block."""
    with store.engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count())
                .select_from(ledger)
                .where(
                    ledger.c.campaign_id == campaign_id,
                    ledger.c.state == "failed",
                    ledger.c.error.startswith(BLOCKED, autoescape=True),
                )
            )
            or 0
        )
