"""What became of a campaign's handed-over recipients, written to the ledger.

Part of :class:`newsletter.send.ledger.Ledger`: the outcomes of single messages (the
outbox, SMTP, SES) and of whole batches (one request: SendGrid, Postmark, Mailgun). A
batch is one id range, so "mark the batch sent" is one ``UPDATE ... BETWEEN``; what differs
from reader to reader (Postmark's and SES's message id a reader) is read from one JSON
parameter in the same statement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, String, and_, bindparam, cast, func, update
from sqlalchemy.dialects import postgresql

from newsletter.send.campaign_rows import now, write_connection
from newsletter.send.handovers import count_handovers
from newsletter.send.ledger_batches import Claim, Outcome, stored_error
from newsletter.store.schema import ledger

# A batch with more distinct (state, error) outcomes than this is written row by row: one
# UPDATE per outcome would cost more than one per recipient.
MAX_OUTCOME_GROUPS = 8


class LedgerOutcomes:
    """The outcome-writing half of :class:`newsletter.send.ledger.Ledger`, which sets these
    attributes (its statements built once, in its ``__init__``)."""

    engine: Engine
    campaign_id: int
    _mine: Any
    _message_id_of_row: Any
    _settle_one: Any

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
        """A batch whose outcomes differ. Postmark's and SES's, all sent with a message id
        each: one UPDATE per outcome (state, error), each row's id read from one JSON
        object of them all. Every row still ``in_flight`` ends with the same columns as
        :meth:`_settle_rows` would give it."""
        groups: dict[tuple[str, str | None], list[int]] = {}
        for recipient, (state, _, error) in zip(claim.recipients, outcomes, strict=True):
            groups.setdefault((state, error), []).append(recipient.subscriber_id)
        if len(groups) > MAX_OUTCOME_GROUPS:
            self._settle_rows(connection, claim, outcomes, in_batch, when)
            return
        message_ids = {message_id for _, message_id, _ in outcomes}
        shared_id: dict[str, Any] = {}
        parameters: dict[str, str] = {}
        if len(message_ids) == 1:
            shared_id["message_id"] = message_ids.pop()
        else:
            # Every reader's own id (Postmark's, SES's) in the same UPDATE as their state:
            # the ids go as one JSON object the statement reads each row's from, not one
            # UPDATE a reader.
            shared_id["message_id"] = self._message_id_of_row
            parameters["message_ids"] = orjson.dumps(
                {
                    str(recipient.subscriber_id): message_id
                    for recipient, (_, message_id, _) in zip(
                        claim.recipients, outcomes, strict=True
                    )
                }
            ).decode()
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
                ),
                parameters,
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


def message_id_of_row(dialect: str) -> Any:
    """A ledger row's message id, read from the JSON object bound as ``message_ids``
    (subscriber id -> message id), in the dialect's JSON functions."""
    by_reader = bindparam("message_ids", type_=String)
    if dialect == "postgresql":
        key = cast(ledger.c.subscriber_id, String)
        return func.jsonb_extract_path_text(cast(by_reader, postgresql.JSONB), key)
    return func.json_extract(by_reader, func.printf('$."%d"', ledger.c.subscriber_id))


def _row_values(
    state: str, message_id: str | None, error: str | None, when: dt.datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {"state": state, "error": stored_error(error), "updated_at": when}
    if message_id is not None:
        values["message_id"] = message_id
    if state == "sent":
        values["sent_at"] = when
    return values
