"""The ledger as a :class:`~newsletter.send.providers.DeliveryLog`: per-message outcomes.

Outbox and SMTP hand over one message at a time, so they can tell the campaign about
each one as it happens. :class:`LedgerLog` turns that into ledger rows: a recipient is
moved ``pending`` -> ``in_flight`` just before their message leaves (and ``skipped``
instead if they unsubscribed since the batch was read), and the outcomes reported
since the last such move are written in the same transaction. So one commit per
message, and after a crash every connection has at most the one message it was
sending ``in_flight`` (which the next run calls ``unknown``); the messages before it
are ``sent`` or ``failed``, the ones after it still ``pending``.
"""

from __future__ import annotations

import threading

from newsletter.send.ledger import Claim, Ledger, Outcome
from newsletter.send.providers import Delivery

# Delivery status -> ledger state: "deferred" goes back to pending for the next run.
LEDGER_STATE = {
    "sent": "sent",
    "failed": "failed",
    "deferred": "pending",
    "unknown": "unknown",
    "skipped": "skipped",
}


def outcome(subscriber_id: int, delivery: Delivery) -> Outcome:
    return Outcome(
        subscriber_id, LEDGER_STATE[delivery.status], delivery.message_id, delivery.error
    )


class LedgerLog:
    """Writes one batch's messages to the ledger as the provider reports them.

    The provider's connections report from their own threads; a lock keeps the writes
    in order (SQLite takes one writer at a time anyway).
    """

    def __init__(self, ledger: Ledger, claim: Claim) -> None:
        self.ledger = ledger
        self.ids = [row.subscriber_id for row in claim.recipients]
        self._lock = threading.Lock()
        self._settled: list[Outcome] = []

    def starting(self, index: int) -> bool:
        with self._lock:
            settled, self._settled = self._settled, []
            try:
                return self.ledger.start_one(self.ids[index], settled)
            except BaseException:
                self._settled[:0] = settled  # not written: keep them for flush()
                raise

    def finished(self, index: int, delivery: Delivery) -> None:
        with self._lock:
            self._settled.append(outcome(self.ids[index], delivery))

    def flush(self) -> None:
        """Write the outcomes reported since the last hand-over (at the end of a batch)."""
        with self._lock:
            settled, self._settled = self._settled, []
            self.ledger.settle(settled)
