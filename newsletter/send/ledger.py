"""The campaign ledger: every recipient of a campaign, sent exactly once.

Starting a campaign snapshots its recipients, one row each, in ``pending``. Each batch
moves from ``pending`` to ``in_flight`` in one transaction *before* it is handed to the
provider, and to ``sent``/``failed`` in one transaction after::

    pending ──► in_flight ──► sent      (provider acknowledged the batch)
                       │ └──► failed    (provider refused this recipient for good)
                       └────► unknown   (process died while the batch was in flight)
    unknown ──(--retry-unknown)──► pending ;  unknown ──(webhook event)──► sent | failed
    pending ──► skipped                (unsubscribed/suppressed after the campaign started)

So after a crash, ``in_flight`` rows are exactly the batch that was out: the next run
calls them ``unknown`` and never sends them again on its own. Only one process may
work on a campaign at a time: it holds the campaign's
lease (:class:`newsletter.send.lease.Lease`).

Functions take the :class:`~newsletter.store.Store` (or its engine). Updates are per
batch, not per recipient: a batch's rows are one id range (they are claimed in id
order), so "mark the batch sent" is one ``UPDATE ... BETWEEN``; only what differs from
reader to reader (Postmark's message id a reader) is written row by row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, bindparam, func, literal, select, update

from newsletter.errors import SendError
from newsletter.safe_text import clean_text
from newsletter.send.campaign_rows import (
    count_handovers,
    engine_of,
    now,
    recipient_condition,
    write_connection,
)
from newsletter.store import Store
from newsletter.store.database import analyze
from newsletter.store.schema import campaigns, ledger, subscribers

LOST_IN_FLIGHT = (
    "the sending process stopped while this message was with the provider; "
    "it may or may not have gone out"
)
# Webhook events that prove the provider has the message, and those that say it never
# will deliver it.
ACCEPTED_EVENTS = frozenset({"processed", "delivered", "deferred"})
# "blocked": the receiving server refused the content or the sender, not the address
# (SendGrid's bounce of type blocked); recorded as blocked like the mailbox's policy blocks.
REFUSED_EVENTS = frozenset({"bounce", "dropped", "blocked"})


def refusal_error(event: str) -> str:
    """The ledger error of a copy the provider reports refused by ``event``; a block's
    starts with ``blocked: `` (store/returns.BLOCKED), which status and report count."""
    if event == "blocked":
        return "blocked: refused for the content or the sender (reported by the provider)"
    return f"{event} (reported by the provider)"


MAX_ID = 2**63 - 1  # above every id (ids are 64-bit)
# A batch with more distinct (state, error) outcomes than this is written row by row: one
# UPDATE per outcome would cost more than one per recipient.
MAX_OUTCOME_GROUPS = 8


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


def _still_active() -> Any:
    """The ledger row's subscriber is still there and active (checked at hand-over)."""
    return (
        select(subscribers.c.id)
        .where(subscribers.c.id == ledger.c.subscriber_id, subscribers.c.status == "active")
        .exists()
    )


def _skip_reason() -> Any:
    """``not sent: <status>`` of the ledger row's subscriber (``erased`` if gone), as SQL."""
    status = (
        select(subscribers.c.status)
        .where(subscribers.c.id == ledger.c.subscriber_id)
        .scalar_subquery()
    )
    return literal("not sent: ").concat(func.coalesce(status, "erased"))


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


class Ledger:
    """The rows of one campaign, for the process holding its lease; ``only``: those of
    them that meet a condition (a subject test's phase: one subject's sample, the rest).
    Every statement reads and moves those rows alone, so a phase never touches another's."""

    def __init__(self, store: Store | Engine, campaign_id: int, only: Any = None) -> None:
        self.engine = engine_of(store)
        self.campaign_id = campaign_id
        self.only = only
        self._mine = ledger.c.campaign_id == campaign_id
        if only is not None:
            self._mine = and_(self._mine, only)
        # The per-message statements (SMTP, the outbox: one transaction per message),
        # built once: building an UPDATE costs several times what SQLite takes to run it.
        one_pending = and_(
            self._mine, ledger.c.state == "pending", ledger.c.subscriber_id == bindparam("one")
        )
        self._start_one = (
            update(ledger)
            .where(one_pending, _still_active())
            .values(state="in_flight", attempts=ledger.c.attempts + 1, updated_at=bindparam("now"))
        )
        self._skip_one = (
            update(ledger)
            .where(one_pending)
            .values(state="skipped", error=_skip_reason(), updated_at=bindparam("now"))
        )
        # A batch's message ids, one per recipient (Postmark's), before its states move.
        self._message_id_one = (
            update(ledger)
            .where(
                self._mine, ledger.c.state == "in_flight", ledger.c.subscriber_id == bindparam("id")
            )
            .values(message_id=bindparam("new_message_id"))
        )
        self._settle_one = (
            update(ledger)
            .where(
                self._mine, ledger.c.state == "in_flight", ledger.c.subscriber_id == bindparam("id")
            )
            .values(
                state=bindparam("new_state"),
                message_id=bindparam("new_message_id"),
                error=bindparam("new_error"),
                sent_at=bindparam("new_sent_at"),
                updated_at=bindparam("now"),
            )
        )

    def recover(self) -> int:
        """``in_flight`` -> ``unknown``: the batch a dead process had out. Returns how many."""
        return self._move("in_flight", "unknown", error=LOST_IN_FLIGHT)

    def refresh_statistics(self) -> None:
        """Let PostgreSQL's planner see the rows a snapshot just added (a run calls this
        first); see :func:`newsletter.store.database.analyze`."""
        analyze(self.engine, ledger)

    def count(self, state: str) -> int:
        """This ledger's rows in ``state``."""
        with self.engine.connect() as connection:
            return (
                connection.scalar(
                    select(func.count())
                    .select_from(ledger)
                    .where(self._mine, ledger.c.state == state)
                )
                or 0
            )

    def requeue_unknown(self) -> int:
        """``unknown`` -> ``pending``, for ``--retry-unknown``. Returns how many."""
        return self._move("unknown", "pending")

    def requeue_failed(self) -> int:
        """``failed`` -> ``pending``, for ``--retry-failed`` (after the cause was fixed).
        Who has bounced or left since is skipped when their batch is read."""
        return self._move("failed", "pending")

    def _move(self, old: str, new: str, *, error: str | None = None) -> int:
        values: dict[str, Any] = {"state": new, "updated_at": now()}
        if error is not None:
            values["error"] = error
        with write_connection(self.engine) as connection, connection.begin():
            result = connection.execute(
                update(ledger).where(self._mine, ledger.c.state == old).values(**values)
            )
        return result.rowcount

    def next_batch(self, *, after: int, size: int) -> Claim | None:
        """The next ``size`` pending recipients with an id above ``after``; None when
        nothing is left. They stay ``pending`` until :meth:`hand_over`, so the batch can
        be prepared while the previous one is still with the provider.

        Recipients no longer active (unsubscribed, bounced, erased since the start) are
        marked ``skipped`` here and left out.
        """
        query = pending_batch(self.campaign_id, after=after, size=size, only=self.only)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return None
        # Rows unpacked as tuples: attribute access on a thousand Rows costs more than the
        # query itself.
        gone = [(row[0], row[4]) for row in rows if row[4] != "active"]  # (id, status)
        if gone:
            with write_connection(self.engine) as connection, connection.begin():
                connection.execute(
                    update(ledger)
                    .where(
                        self._mine,
                        ledger.c.state == "pending",
                        ledger.c.subscriber_id == bindparam("id"),
                    )
                    .values(state="skipped", error=bindparam("reason"), updated_at=now()),
                    [
                        {"id": subscriber_id, "reason": f"not sent: {status or 'erased'}"}
                        for subscriber_id, status in gone
                    ],
                )
        recipients = [
            LedgerRecipient(subscriber_id, email, name, link_key)
            for subscriber_id, email, name, link_key, status in rows
            if status == "active"
        ]
        return Claim(recipients, skipped=len(gone), last_id=rows[-1][0])

    def hand_over(self, claim: Claim) -> Claim:
        """``pending`` -> ``in_flight`` for the batch, committed before the provider sees it.

        The subscribers are checked again in the same statement: the batch was read while
        the previous one was with the provider, and anyone who unsubscribed (bounced,
        complained, was erased) since is ``skipped`` instead. Returns the claim of who
        is handed over.
        """
        in_range = and_(
            self._mine,
            ledger.c.state == "pending",
            ledger.c.subscriber_id.between(claim.first_id, claim.last_recipient_id),
        )
        # A join (UPDATE ... FROM), bounded on both tables' keys like the batch's read: on
        # PostgreSQL half the cost of a correlated EXISTS per row.
        active = and_(
            subscribers.c.id == ledger.c.subscriber_id,
            subscribers.c.id.between(claim.first_id, claim.last_recipient_id),
            subscribers.c.status == "active",
        )
        with write_connection(self.engine) as connection, connection.begin():
            moved = connection.execute(
                update(ledger)
                .where(in_range, active)
                .values(state="in_flight", attempts=ledger.c.attempts + 1, updated_at=now())
            ).rowcount
            if moved == len(claim.recipients):
                return claim
            # Rare: someone left while the batch waited. The rest of the range goes.
            gone = set(
                connection.execute(
                    update(ledger)
                    .where(in_range)
                    .values(state="skipped", error=_skip_reason(), updated_at=now())
                    .returning(ledger.c.subscriber_id)
                ).scalars()
            )
            kept = [row for row in claim.recipients if row.subscriber_id not in gone]
            if moved != len(kept):
                # Only the lease holder moves pending rows, so this is a bug, not a race.
                raise SendError(
                    f"campaign {self.campaign_id}: {moved} of {len(claim.recipients)} "
                    "recipients of the batch were still pending; nothing was sent, send again"
                )
        return Claim(kept, skipped=claim.skipped + len(gone), last_id=claim.last_id)

    def put_back(self, claim: Claim, reason: str) -> None:
        """``in_flight`` -> ``pending`` for a batch the provider did not take (a 5xx, a
        429, no connection), committed before anyone waits to try it again."""
        with write_connection(self.engine) as connection, connection.begin():
            connection.execute(
                update(ledger)
                .where(
                    self._mine,
                    ledger.c.state == "in_flight",
                    ledger.c.subscriber_id.between(claim.first_id, claim.last_recipient_id),
                )
                .values(state="pending", error=stored_error(reason), updated_at=now())
            )

    def start_one(self, subscriber_id: int, settled: Sequence[Outcome]) -> bool:
        """For providers that send message by message: write the ``settled`` outcomes
        and move one recipient ``pending`` -> ``in_flight``, in one transaction. False
        (and the row ``skipped``) when they are no longer active."""
        with write_connection(self.engine) as connection, connection.begin():
            self._settle(connection, settled)
            one = {"one": subscriber_id, "now": now()}
            moved = connection.execute(self._start_one, one).rowcount
            if not moved:
                connection.execute(self._skip_one, one)
        return bool(moved)

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Write outcomes of single ``in_flight`` rows (providers that send one message
        at a time: the outbox, SMTP, SES)."""
        if outcomes:
            with write_connection(self.engine) as connection, connection.begin():
                self._settle(connection, outcomes)

    def _settle(self, connection: Connection, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        when = now()
        connection.execute(
            self._settle_one,
            [
                {
                    "id": subscriber_id,
                    "new_state": state,
                    "new_message_id": message_id,
                    "new_error": stored_error(error),
                    "new_sent_at": when if state == "sent" else None,
                    "now": when,
                }
                for subscriber_id, state, message_id, error in outcomes
            ],
        )

    def record(
        self,
        claim: Claim,
        outcomes: Sequence[tuple[str, str | None, str | None]],
        *,
        handed_over: tuple[str, int] | None = None,
    ) -> None:
        """Write what became of a claimed batch: one ``(state, message_id, error)`` per
        recipient, in order; states are ``sent``, ``failed``, ``pending`` or ``unknown``.
        ``handed_over``: ``(provider, messages)`` to count for the campaign, in the same
        transaction (one commit per batch, not two)."""
        when = now()
        in_batch = and_(
            self._mine,
            ledger.c.state == "in_flight",
            ledger.c.subscriber_id.between(claim.first_id, claim.last_recipient_id),
        )
        with write_connection(self.engine) as connection, connection.begin():
            if handed_over is not None:
                count_handovers(connection, self.campaign_id, *handed_over)
            if len(set(outcomes)) == 1:
                # The common case (a SendGrid batch: all sent, one message id): one UPDATE.
                state, message_id, error = outcomes[0]
                connection.execute(
                    update(ledger)
                    .where(in_batch)
                    .values(_row_values(state, message_id, error, when))
                )
                return
            self._record_mixed(connection, claim, outcomes, in_batch, when)

    def _record_mixed(
        self,
        connection: Connection,
        claim: Claim,
        outcomes: Sequence[tuple[str, str | None, str | None]],
        in_batch: Any,
        when: dt.datetime,
    ) -> None:
        """A batch whose outcomes differ. Postmark's, all sent with a message id each:
        the ids row by row (a column no index holds, no timestamp to convert), then
        one UPDATE per outcome (state, error) for the states and times. Every row still
        ``in_flight`` ends with the same columns as :meth:`_settle_rows` would give it."""
        groups: dict[tuple[str, str | None], list[int]] = {}
        for recipient, (state, _, error) in zip(claim.recipients, outcomes, strict=True):
            groups.setdefault((state, error), []).append(recipient.subscriber_id)
        if len(groups) > MAX_OUTCOME_GROUPS:
            self._settle_rows(connection, claim, outcomes, in_batch, when)
            return
        message_ids = {message_id for _, message_id, _ in outcomes}
        shared_id: dict[str, str | None] = {}
        if len(message_ids) == 1:
            shared_id["message_id"] = message_ids.pop()
        else:
            # Before the states move: only rows still in flight are written.
            connection.execute(
                self._message_id_one,
                [
                    {"id": recipient.subscriber_id, "new_message_id": message_id}
                    for recipient, (_, message_id, _) in zip(
                        claim.recipients, outcomes, strict=True
                    )
                ],
            )
        for (state, error), ids in groups.items():
            rows = in_batch if len(groups) == 1 else and_(in_batch, ledger.c.subscriber_id.in_(ids))
            connection.execute(
                update(ledger)
                .where(rows)
                .values(
                    state=state,
                    error=stored_error(error),
                    sent_at=when if state == "sent" else None,
                    updated_at=when,
                    **shared_id,
                )
            )

    def _settle_rows(
        self,
        connection: Connection,
        claim: Claim,
        outcomes: Sequence[tuple[str, str | None, str | None]],
        in_batch: Any,
        when: dt.datetime,
    ) -> None:
        """Every recipient's outcome written on its own row (outcomes too varied to group)."""
        connection.execute(
            update(ledger)
            .where(in_batch, ledger.c.subscriber_id == bindparam("id"))
            .values(
                state=bindparam("new_state"),
                message_id=bindparam("new_message_id"),
                error=bindparam("new_error"),
                sent_at=bindparam("new_sent_at"),
                updated_at=when,
            ),
            [
                {
                    "id": recipient.subscriber_id,
                    "new_state": state,
                    "new_message_id": message_id,
                    "new_error": stored_error(error),
                    "new_sent_at": when if state == "sent" else None,
                }
                for recipient, (state, message_id, error) in zip(
                    claim.recipients, outcomes, strict=True
                )
            ],
        )

    def finish(self, *, error: str | None) -> None:
        """Note how this run ended: finished when nothing is pending, in flight or
        unknown (someone may still have to settle those), else why it stopped. The whole
        campaign counts, whatever rows this ledger works on."""
        whole = ledger.c.campaign_id == self.campaign_id
        with write_connection(self.engine) as connection, connection.begin():
            left = connection.scalar(
                select(func.count())
                .select_from(ledger)
                .where(whole, ledger.c.state.in_(("pending", "in_flight", "unknown")))
            )
            connection.execute(
                update(campaigns)
                .where(campaigns.c.id == self.campaign_id)
                .values(finished_at=None if left else now(), last_error=stored_error(error))
            )


def _row_values(
    state: str, message_id: str | None, error: str | None, when: dt.datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {"state": state, "error": stored_error(error), "updated_at": when}
    if message_id is not None:
        values["message_id"] = message_id
    if state == "sent":
        values["sent_at"] = when
    return values


def apply_delivery_event(
    store: Store | Engine,
    *,
    campaign_id: int,
    subscriber_id: int,
    event: str,
    message_id: str | None,
) -> bool:
    """Reconcile one provider event (SendGrid Event Webhook) with the ledger.

    ``processed``/``delivered``/``deferred`` prove the provider has the message: a row
    still ``unknown`` or ``in_flight`` (or put back to ``pending`` by --retry-unknown
    after an earlier hand-off) becomes ``sent``. ``bounce``/``dropped`` mean it will not
    be delivered: the row becomes ``failed``. Other events leave the ledger alone.
    Returns True when a row changed.
    """
    when = now()
    handed_over = (ledger.c.state == "pending") & (ledger.c.attempts > 0)
    if event in ACCEPTED_EVENTS:
        condition = ledger.c.state.in_(("unknown", "in_flight")) | handed_over
        values: dict[str, Any] = {"state": "sent", "sent_at": when, "error": None}
    elif event in REFUSED_EVENTS:
        condition = ledger.c.state.in_(("unknown", "in_flight", "sent")) | handed_over
        values = {"state": "failed", "error": refusal_error(event)}
    else:
        return False
    row = and_(ledger.c.campaign_id == campaign_id, ledger.c.subscriber_id == subscriber_id)
    with write_connection(engine_of(store)) as connection, connection.begin():
        changed = connection.execute(
            update(ledger).where(row, condition).values(**values, updated_at=when)
        ).rowcount
        if changed and message_id:
            connection.execute(
                update(ledger)
                .where(row, ledger.c.message_id.is_(None))
                .values(message_id=message_id)
            )
    return bool(changed)
