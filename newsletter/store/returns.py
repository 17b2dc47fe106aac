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
- ``campaign_handovers``: per campaign and provider, how many messages were handed
  over (``newsletter status`` shows it, so a resumed campaign cannot hide where its
  mail went).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)

from newsletter.store.schema import (
    campaign_handovers,
    campaigns,
    ledger,
    mailbox_messages,
    soft_bounces,
    subscriber_events,
    subscribers,
)
from newsletter.store.subscriber_rows import insert_ignoring_duplicates, now, unsubscribed_values
from newsletter.store.subscribers import Store

_LOOKUP_SLICE = 1000


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


def record_returns(store: Store, returns: Sequence[Return], *, soft_bounce_limit: int) -> Recorded:
    """Apply ``returns`` in one transaction; a message already recorded changes nothing.

    Set-based: a few statements per kind for the whole chunk, not a few per message
    (10,000 bounces in seconds). Within a chunk a complaint outranks a bounce, and a
    bounce an unsubscribe, as :meth:`Store.mark` has it.
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
                fresh.append(item)
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
            recorded.bounced = _mark_many(connection, bounced, "bounced", when)
            recorded.ledger_failed = _fail_ledger_rows(
                connection, by_kind.get("hard_bounce", {}), when
            )
            recorded.complained = _mark_many(
                connection, by_kind.get("complaint", {}), "complained", when
            )
            recorded.unsubscribed = _unsubscribe_many(
                connection, by_kind.get("unsubscribe", {}), when
            )
    return recorded


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


def _mark_many(
    connection: Connection, items: dict[int, Return], status: str, when: dt.datetime
) -> int:
    """``Store.mark`` for many: a complaint is never downgraded to a bounce."""
    keep = ("bounced", "complained") if status == "bounced" else ("complained",)
    changing = _existing(connection, list(items), subscribers.c.status.not_in(keep))
    if not changing:
        return 0
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id.in_(changing))
        .values(status=status, updated_at=when)
    )
    _log_many(connection, changing, status, items, when)
    return len(changing)


def _unsubscribe_many(connection: Connection, items: dict[int, Return], when: dt.datetime) -> int:
    changing = _existing(connection, list(items), subscribers.c.status.in_(("pending", "active")))
    if not changing:
        return 0
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == bindparam("row_id"))
        .values(unsubscribed_values(when, "mailto")),
        [{"row_id": i, "campaign": items[i].campaign_id} for i in changing],
    )
    _log_many(connection, changing, "unsubscribed", items, when)
    return len(changing)


def _log_many(
    connection: Connection, ids: list[int], event: str, items: dict[int, Return], when: dt.datetime
) -> None:
    rows = []
    for subscriber_id in ids:
        item = items[subscriber_id]
        detail: dict[str, object] = {"reason": item.reason} if item.reason else {}
        if item.campaign_id:
            detail["campaign_id"] = item.campaign_id
        rows.append(
            {
                "subscriber_id": subscriber_id,
                "at": when,
                "event": event,
                "source": "mailto" if event == "unsubscribed" else "mailbox",
                "ip": None,
                "detail": detail,
            }
        )
    connection.execute(insert(subscriber_events), rows)


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


def _fail_ledger_rows(connection: Connection, items: dict[int, Return], when: dt.datetime) -> int:
    """A hard bounce means that campaign's copy was never delivered."""
    rows = [
        {
            "campaign": item.campaign_id,
            "row_id": subscriber_id,
            "error": f"bounced: {item.reason}"[:1000],
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


def add_handovers(store: Store, campaign_id: int, provider: str, count: int) -> None:
    """Count ``count`` more messages handed to ``provider`` for the campaign."""
    if count <= 0:
        return
    with store.engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            count_handovers(connection, campaign_id, provider, count)


def count_handovers(connection: Connection, campaign_id: int, provider: str, count: int) -> None:
    """:func:`add_handovers` in the caller's transaction (the ledger writes a batch's
    outcomes and its hand-overs in one)."""
    if count <= 0:
        return
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
