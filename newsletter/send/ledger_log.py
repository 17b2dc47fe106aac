"""The ledger as a :class:`~newsletter.send.providers.DeliveryLog`: waits, hand-overs,
per-message outcomes.

A provider tells the log right before it puts recipients on the wire. The log waits
first (the run's :class:`~newsletter.send.ratelimit.RateLimiter`, and any back-off the
provider asks for), *then* moves them ``pending`` -> ``in_flight`` in one transaction,
re-checking that they are still active (``skipped`` instead if they left meanwhile).
So whatever a wait lasts (a second, or hours under ``sending.per_day``), its
recipients are ``pending`` throughout: a kill leaves them to the next run, an
unsubscribe committed before the hand-over is honoured, and ``unknown`` after a crash
means only "the provider may have it".

Outbox and SMTP hand over one message at a time (:meth:`LedgerLog.starting`), and the
outcomes they report (:meth:`LedgerLog.finished`) are written in the transaction of the
next hand-over, or before any wait. So one commit per message, and after a crash every
connection has at most the one message it was sending ``in_flight`` (which the next
run calls ``unknown``); the messages before it are ``sent`` or ``failed``, the ones
after it still ``pending``. SendGrid hands over a whole request
(:meth:`LedgerLog.starting_many`); its outcome is recorded by the campaign.

Setting the run's ``stopping`` event (Ctrl-C in ``newsletter send``), or
:meth:`LedgerLog.stop`, ends any wait at once: the hand-over it was waiting for raises
:class:`SendStopped` instead, leaving them pending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from newsletter.send.ledger import Ledger
from newsletter.send.ledger_batches import Claim, Outcome
from newsletter.send.providers import Delivery
from newsletter.send.ratelimit import RateLimiter

# Delivery status -> ledger state: "deferred" goes back to pending for the next run.
LEDGER_STATE = {
    "sent": "sent",
    "failed": "failed",
    "deferred": "pending",
    "unknown": "unknown",
    "skipped": "skipped",
}
NOTICE_AFTER = 1.0  # waits at least this long are announced (a silent run looks hung)


class SendStopped(Exception):
    """The run was stopped (Ctrl-C) while a provider waited to hand recipients over."""


def outcome(subscriber_id: int, delivery: Delivery) -> Outcome:
    return Outcome(
        subscriber_id, LEDGER_STATE[delivery.status], delivery.message_id, delivery.error
    )


class LedgerLog:
    """Hands one batch's recipients over and writes what the provider reports.

    The provider's connections report from their own threads; a lock keeps the writes
    in order (SQLite takes one writer at a time anyway). The waits happen outside it.
    """

    def __init__(
        self,
        ledger: Ledger,
        claim: Claim,
        limiter: RateLimiter | None = None,
        notify: Callable[[str], None] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.ledger = ledger
        self.claim = claim
        self.ids = [row.subscriber_id for row in claim.recipients]
        self.limiter = limiter or RateLimiter()
        self.notify = notify or (lambda message: None)
        self._lock = threading.Lock()
        self._settled: list[Outcome] = []
        self._stopping = stopping or threading.Event()  # the run's: set, every wait ends

    # Waiting.

    def stop(self) -> None:
        """End every wait now; hand-overs not yet made raise :class:`SendStopped`."""
        self._stopping.set()

    def _wait(self, seconds: float, why: str) -> None:
        if seconds > 0:
            self.flush()  # what was reported must not stay in flight while we wait
            if seconds >= NOTICE_AFTER:
                self.notify(f"waiting {seconds:.1f} s {why}; nothing is handed over meanwhile")
            if self._stopping.wait(seconds):
                raise SendStopped("stopped while waiting to hand over")
        elif self._stopping.is_set():
            raise SendStopped("stopped before the hand-over")

    def _wait_for_turn(self, count: int, back_off: float) -> None:
        self._wait(back_off, "before trying again")
        self._wait(
            self.limiter.reserve(count), "for the rate limit (sending.rate, per_hour, per_day)"
        )

    # Handing over.

    def starting(self, index: int, wait: float = 0.0) -> bool:
        self._wait_for_turn(1, wait)
        with self._lock:
            if self._stopping.is_set():
                raise SendStopped("stopped before the hand-over")
            settled, self._settled = self._settled, []
            try:
                return self.ledger.start_one(self.ids[index], settled)
            except BaseException:
                self._settled[:0] = settled  # not written: keep them for flush()
                raise

    def starting_many(self, indexes: Sequence[int], wait: float = 0.0) -> list[int]:
        self._wait_for_turn(len(indexes), wait)
        rows = [self.claim.recipients[index] for index in indexes]
        with self._lock:
            if self._stopping.is_set():
                raise SendStopped("stopped before the hand-over")
            handed = self.ledger.hand_over(Claim(rows, skipped=0, last_id=self.claim.last_id))
        if len(handed.recipients) == len(rows):
            return list(indexes)
        kept = {row.subscriber_id for row in handed.recipients}
        return [index for index in indexes if self.ids[index] in kept]

    # Outcomes.

    def finished(self, index: int, delivery: Delivery) -> None:
        with self._lock:
            self._settled.append(outcome(self.ids[index], delivery))
        if delivery.status == "deferred":
            self.flush()  # back to pending now: the provider may wait before a retry

    def put_back(self, indexes: Sequence[int], reason: str) -> None:
        rows = [self.claim.recipients[index] for index in indexes]
        if rows:
            with self._lock:
                self.ledger.put_back(Claim(rows, skipped=0, last_id=self.claim.last_id), reason)

    def flush(self) -> None:
        """Write the outcomes reported since the last hand-over (at the end of a batch)."""
        with self._lock:
            settled, self._settled = self._settled, []
            self.ledger.settle(settled)
