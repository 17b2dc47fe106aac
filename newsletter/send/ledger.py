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
order), so "mark the batch sent" is one ``UPDATE ... BETWEEN``; what differs from reader
to reader (Postmark's and SES's message id a reader) is read from one JSON parameter.

Here: claiming and handing over. The rows a batch reads are in
:mod:`newsletter.send.ledger_batches`, the outcomes written after it in
:mod:`newsletter.send.ledger_outcomes`, provider events in
:mod:`newsletter.send.delivery_events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, literal, select, update

from newsletter.errors import SendError
from newsletter.send.campaign_rows import engine_of, now, write_connection
from newsletter.send.ledger_batches import (
    Claim,
    LedgerRecipient,
    Outcome,
    pending_batch,
    stored_error,
)
from newsletter.send.ledger_outcomes import LedgerOutcomes, message_id_of_row
from newsletter.store import Store
from newsletter.store.database import analyze
from newsletter.store.schema import Id, campaigns, ledger, subscribers

LOST_IN_FLIGHT = (
    "the sending process stopped while this message was with the provider; "
    "it may or may not have gone out"
)


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


class Ledger(LedgerOutcomes):
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
        # A batch's message ids, one per recipient (Postmark's, SES's), with its states.
        self._message_id_of_row = message_id_of_row(self.engine.dialect.name)
        # A request's or a batch's hand-over (one id range), built once too: SES hands
        # over every 50 readers, some 400 times a 20,000-reader campaign.
        first, last = bindparam("first", type_=Id), bindparam("last", type_=Id)
        self._hand_over_range = (
            update(ledger)
            .where(
                self._mine,
                ledger.c.state == "pending",
                ledger.c.subscriber_id.between(first, last),
                # A join (UPDATE ... FROM), bounded on both tables' keys like the batch's
                # read: on PostgreSQL half the cost of a correlated EXISTS per row.
                subscribers.c.id == ledger.c.subscriber_id,
                subscribers.c.id.between(first, last),
                subscribers.c.status == "active",
            )
            .values(state="in_flight", attempts=ledger.c.attempts + 1, updated_at=bindparam("now"))
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
        bounds = {"first": claim.first_id, "last": claim.last_recipient_id, "now": now()}
        with write_connection(self.engine) as connection, connection.begin():
            moved = connection.execute(self._hand_over_range, bounds).rowcount
            if moved == len(claim.recipients):
                return claim
            # Rare: someone left while the batch waited. The rest of the range goes.
            in_range = and_(
                self._mine,
                ledger.c.state == "pending",
                ledger.c.subscriber_id.between(claim.first_id, claim.last_recipient_id),
            )
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
