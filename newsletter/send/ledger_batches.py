"""The ledger's rows as a run reads them: a batch of pending recipients (one range of
the ledger's primary key), who they are, and what became of each.

:class:`newsletter.send.ledger.Ledger` claims and moves them; ``--dry-run`` reads them with
:func:`upcoming` without moving anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, and_, func, select

from newsletter.safe_text import clean_text
from newsletter.send.campaign_rows import engine_of, recipient_condition
from newsletter.store import Store
from newsletter.store.schema import ledger, subscribers

MAX_ID = 2**63 - 1  # above every id (ids are 64-bit)


def upcoming(
    store: Store | Engine,
    *,
    campaign_id: int | None,
    topics: Sequence[str],
    size: int,
    where: Any = None,
) -> Iterator[list[LedgerRecipient]]:
    """The batches a run would send, read-only (for ``--dry-run``): the campaign's pending
    rows, or for a campaign not started yet, the recipients its snapshot would take
    (``where``: its segment's condition)."""
    engine = engine_of(store)
    after = 0
    while True:
        if campaign_id is None:
            query = (
                select(
                    subscribers.c.id,
                    subscribers.c.email,
                    subscribers.c.name,
                    subscribers.c.link_key,
                    subscribers.c.status,
                )
                .where(recipient_condition(topics, where), subscribers.c.id > after)
                .order_by(subscribers.c.id)
                .limit(size)
            )
        else:
            query = pending_batch(campaign_id, after=after, size=size)
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return
        yield [
            LedgerRecipient(subscriber_id, email, name, link_key)
            for subscriber_id, email, name, link_key, status in rows
            if status == "active"  # as the run would skip the others
        ]
        after = rows[-1][0]


def pending_batch(campaign_id: int, *, after: int, size: int, only: Any = None) -> Any:
    """``(subscriber_id, email, name, link_key, status)`` of the next ``size`` pending rows of the
    campaign above ``after``, in id order; an erased subscriber's columns are NULL.

    The batch is a range of the ledger's primary key, and the join is bounded by that
    range on both tables, so a batch costs the same at the start and at the end of a
    million-recipient campaign. (Joined and then limited, PostgreSQL may read every
    remaining row of either table for each batch.) ``only``: a condition on the ledger
    rows (a subject test's phase).
    """
    pending = and_(ledger.c.campaign_id == campaign_id, ledger.c.state == "pending")
    if only is not None:
        pending = and_(pending, only)
    last = (
        select(ledger.c.subscriber_id)
        .where(pending, ledger.c.subscriber_id > after)
        .order_by(ledger.c.subscriber_id)
        .offset(size - 1)
        .limit(1)
        .scalar_subquery()
    )
    upper = func.coalesce(last, MAX_ID)  # fewer than size left: all of them
    return (
        select(
            ledger.c.subscriber_id,
            subscribers.c.email,
            subscribers.c.name,
            subscribers.c.link_key,
            subscribers.c.status,
        )
        .outerjoin(
            subscribers,
            and_(
                subscribers.c.id == ledger.c.subscriber_id,
                subscribers.c.id > after,
                subscribers.c.id <= upper,
            ),
        )
        .where(pending, ledger.c.subscriber_id > after, ledger.c.subscriber_id <= upper)
        .order_by(ledger.c.subscriber_id)
    )


def still_to_send(store: Store | Engine, campaign_id: int) -> int:
    """The campaign's readers a run would still hand over: its ``pending`` rows whose
    subscriber is still active (the hand-over skips the others). Once a subject test's
    sample went out, these are its rest."""
    with engine_of(store).connect() as connection:
        return (
            connection.scalar(
                select(func.count())
                .select_from(ledger)
                .join(subscribers, subscribers.c.id == ledger.c.subscriber_id)
                .where(
                    ledger.c.campaign_id == campaign_id,
                    ledger.c.state == "pending",
                    subscribers.c.status == "active",
                )
            )
            or 0
        )


def stored_error(text: str | None) -> str | None:
    """An error as the ledger keeps it. Most are a provider's words (an SMTP server's
    reply, an API's message): a stranger's text, which ``newsletter status`` and
    ``report`` print, so its control characters go (and PostgreSQL takes no NUL)."""
    return None if text is None else clean_text(text)


class Outcome(NamedTuple):
    """What became of one handed-over recipient: a ledger state (``sent``, ``failed``,
    ``pending``, ``unknown``, ``skipped``), the provider's message id, the error."""

    subscriber_id: int
    state: str
    message_id: str | None
    error: str | None


class LedgerRecipient(NamedTuple):
    # A tuple, not a dataclass: a million of them are made per million recipients.
    subscriber_id: int
    email: str
    name: str
    link_key: str  # signed into the recipient's links (newsletter.tokens)


@dataclass(frozen=True)
class Claim:
    """One batch of a campaign: its recipients are ids ``first_id..last_recipient_id``
    (every pending row in that range); ``last_id`` is where the next batch starts."""

    recipients: list[LedgerRecipient]
    skipped: int
    last_id: int

    @property
    def first_id(self) -> int:
        return self.recipients[0].subscriber_id

    @property
    def last_recipient_id(self) -> int:
        return self.recipients[-1].subscriber_id
