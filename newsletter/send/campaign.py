"""Running a campaign: batch after batch claimed, handed over, recorded.

One batch is with the provider at a time. The next one is read and personalised
meanwhile, but its rows stay ``pending`` until it is handed over, after the previous
batch is recorded: so a crash never leaves more than the one batch ``in_flight``.
The provider hands recipients over through the batch's
:class:`~newsletter.send.ledger_log.LedgerLog`, which waits for the run's rate limit
(and any back-off) *before* it records them as handed over, right before the provider
calls its server.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from typing import Any

from newsletter.errors import ProviderError, ProviderUnavailable
from newsletter.send import campaign_rows, ledger, ledger_batches
from newsletter.send.copies import RecipientBuilder
from newsletter.send.lease import Lease
from newsletter.send.ledger_log import LEDGER_STATE, LedgerLog, SendStopped
from newsletter.send.providers import Batch, Content, Delivery, Provider, local_message
from newsletter.send.ratelimit import RateLimiter
from newsletter.send.run_summary import Progress, ProgressCallback, SendSummary
from newsletter.send.stop_request import stopped_reason
from newsletter.store import Store
from newsletter.store.statuses import StatusChange


class CampaignRun:
    """One run of one campaign, by the process that holds its lease."""

    def __init__(
        self,
        store: Store,
        campaign: campaign_rows.Campaign,
        content: Content,
        recipient: RecipientBuilder,
        provider: Provider,
        progress: ProgressCallback | None = None,
        limiter: RateLimiter | None = None,
        stopping: threading.Event | None = None,
        stop_when: Callable[[], str | None] | None = None,
        only: Any = None,
    ) -> None:
        self.store = store
        # Set from outside (Ctrl-C in `newsletter send`): every wait ends, nothing more is
        # handed over, and the run stops with the rest pending.
        self.stopping = stopping or threading.Event()
        # Asked before each batch: a reason to stop there (a cancelled schedule), or None.
        self.stop_when = stop_when or (lambda: None)
        self.campaign = campaign
        self.content = content
        self.recipient = recipient
        self.provider = provider
        self.report = progress or (lambda _: None)
        self.limiter = limiter or RateLimiter()
        # only: the rows of one phase of a subject test (newsletter.send.subject_test).
        self.ledger = ledger.Ledger(store, campaign.id, only)

    def run(
        self, lease: Lease, *, size: int, retry_unknown: bool, retry_failed: bool = False
    ) -> SendSummary:
        started = time.monotonic()
        self.ledger.refresh_statistics()
        recovered = self.ledger.recover()
        requeued = self.ledger.requeue_unknown() if retry_unknown else 0
        requeued_failed = self.ledger.requeue_failed() if retry_failed else 0
        progress = Progress(total=self.ledger.count("pending"))
        self.report(progress)
        stopped: str | None = None
        try:
            with _rare_collections(), ThreadPoolExecutor(1, thread_name_prefix="hand-off") as pool:
                stopped = self._batches(lease, pool, size, progress)
        finally:
            self.ledger.finish(error=stopped)
        return SendSummary(
            campaign_id=self.campaign.id,
            slug=self.campaign.slug,
            provider=self.provider.name,
            dry_run=False,
            sent=progress.sent,
            failed=progress.failed,
            skipped=progress.skipped,
            deferred=progress.deferred,
            unknown=progress.unknown,
            recovered_unknown=recovered,
            requeued_unknown=requeued,
            requeued_failed=requeued_failed,
            seconds=time.monotonic() - started,
            totals=campaign_rows.state_counts(self.store, self.campaign.id),
            stopped=stopped,
        )

    def _batches(
        self, lease: Lease, hand_off: ThreadPoolExecutor, size: int, progress: Progress
    ) -> str | None:
        """Hand over and record batch after batch; the reason to stop, if any."""
        try:
            self._pace_within_the_providers_limit()
        except (ProviderError, ProviderUnavailable) as error:
            return _why_the_campaign_stopped(error)
        upcoming = self._prepare(0, size, progress)
        while upcoming is not None:
            claim, batch = upcoming
            lease.check()
            if self.stopping.is_set():
                return stopped_reason(self.stopping)
            if reason := self.stop_when():
                return reason  # before this batch's hand-over: it and the rest stay pending
            # The log waits for the pace, then hands over (re-checking who is still
            # subscribed) right before the provider calls its server.
            log = LedgerLog(self.ledger, claim, self.limiter, self.provider.notify, self.stopping)
            out = hand_off.submit(self.provider.send_batch, batch, log)
            try:
                upcoming = self._prepare(claim.last_id, size, progress)  # meanwhile
            except BaseException:
                log.stop()  # Ctrl-C: a wait ends now, and who waited stays pending
                raise
            finally:
                stopped = self._record(claim, out, log, progress)
            self.report(progress)
            if stopped:
                return stopped
        return None

    def _pace_within_the_providers_limit(self) -> None:
        """No faster than the provider lets this account send (SES: its send rate)."""
        account_rate = self.provider.max_rate()
        limiter = self.limiter
        if account_rate and (limiter.per_second is None or account_rate < limiter.per_second):
            limiter.per_second = account_rate
            self.provider.notify(
                f"{self.provider.name}: sending at most {account_rate:g} a second (the "
                "account's send rate)"
            )

    def _prepare(
        self, after: int, size: int, progress: Progress
    ) -> tuple[ledger_batches.Claim, Batch] | None:
        """The next batch with anyone left to send to, personalised; None at the end."""
        while (claim := self.ledger.next_batch(after=after, size=size)) is not None:
            progress.add("skipped", claim.skipped)
            if claim.recipients:
                recipients = [self.recipient(row) for row in claim.recipients]
                return claim, Batch(self.content, recipients)
            after = claim.last_id
        return None

    def _record(
        self,
        claim: ledger_batches.Claim,
        out: Future[list[Delivery]],
        log: LedgerLog,
        progress: Progress,
    ) -> str | None:
        """Wait for the hand-off and record what became of each recipient."""
        stopped = None
        try:
            deliveries = out.result()
        except (ProviderError, ProviderUnavailable) as error:
            stopped = _why_the_campaign_stopped(error)
            deliveries = error.deliveries or _undelivered(error, len(claim.recipients))
        except SendStopped:
            # Stopped while the provider waited to hand someone over: they are pending.
            # Only a message a per-message provider had on the wire may still be in flight.
            self._abandon(claim, log, "stopped while the batch was out")
            return stopped_reason(self.stopping)
        except BaseException as error:
            # A KeyboardInterrupt not caught by the CLI, a bug, a full disk. A wait for the
            # pace or a retry ends here and its recipients stay pending; a request already
            # on the wire is let finish.
            log.stop()
            wait_for([out])
            if out.exception() is None:
                self._write(claim, out.result(), log, progress)
            else:
                self._abandon(claim, log, f"interrupted ({type(error).__name__})")
            raise
        self._write(claim, deliveries, log, progress)
        return stopped

    def _abandon(self, claim: ledger_batches.Claim, log: LedgerLog, why: str) -> None:
        """Record a batch whose outcome never came back: what a per-message provider
        reported is written, and the rows still in flight are the ones the provider may
        have (``unknown``); everyone not handed over stays pending."""
        log.flush()
        reason = f"{why} while the batch was out"
        self.ledger.record(claim, [("unknown", None, reason)] * len(claim.recipients))

    def _write(
        self,
        claim: ledger_batches.Claim,
        deliveries: list[Delivery],
        log: LedgerLog,
        progress: Progress,
    ) -> None:
        log.flush()  # the rows it reported are no longer in flight: record skips them
        outcomes = [(LEDGER_STATE[d.status], d.message_id, d.error) for d in deliveries]
        # Counted per status, not per recipient: a thousand calls per batch add up.
        statuses = Counter(delivery.status for delivery in deliveries)
        handed = statuses["sent"] + statuses["failed"] + statuses["unknown"]
        self.ledger.record(claim, outcomes, handed_over=(self.provider.name, handed))
        bounced = [
            StatusChange(
                row.subscriber_id, "bounced", "provider", delivery.error or "", self.campaign.id
            )
            for row, delivery in zip(claim.recipients, deliveries, strict=True)
            if delivery.bounced
        ]
        if bounced:
            self.store.change_statuses(bounced)
        for status, count in statuses.items():
            progress.add(status, count)


@contextmanager
def _rare_collections(threshold: int = 50_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often while batches go out.

    A batch makes some ten thousand short-lived containers (recipients, their dicts,
    the request body), none of them in reference cycles, so reference counting frees
    them all; with the default threshold (700 allocations) the collector still runs
    a dozen times per batch and now and then walks the whole heap: a fifth of the
    sending time. The threshold is put back afterwards.
    """
    old = gc.get_threshold()
    gc.set_threshold(threshold, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _why_the_campaign_stopped(error: ProviderError | ProviderUnavailable) -> str:
    """The provider's reason, and what it means for this campaign."""
    reason = str(error).rstrip(".")
    if isinstance(error, ProviderUnavailable):
        return f"{reason}; the campaign is paused: send again to resume"
    return (
        f"{reason}; the campaign stopped and everyone not yet sent stays pending: send "
        "again once that is fixed"
    )


def _undelivered(error: ProviderError | ProviderUnavailable, count: int) -> list[Delivery]:
    """Every recipient of a batch the provider gave up on as a whole."""
    maybe = isinstance(error, ProviderUnavailable) and error.maybe_delivered
    return [Delivery("unknown" if maybe else "deferred", error=str(error))] * count


def dry_run_campaign(
    store: Store,
    *,
    slug: str,
    provider: str,
    campaign_id: int | None,
    topics: tuple[str, ...],
    content: Content,
    recipient: RecipientBuilder,
    size: int,
    total: int,
    progress: ProgressCallback | None = None,
    where: Any = None,
) -> SendSummary:
    """Everything but the hand-off: every message built, nothing sent or recorded
    (``where``: the segment's condition, for a campaign not started yet)."""
    started = time.monotonic()
    state = Progress(total=total)
    report = progress or (lambda _: None)
    upcoming = ledger_batches.upcoming(
        store, campaign_id=campaign_id, topics=topics, size=size, where=where
    )
    for rows in upcoming:
        for row in rows:
            local_message(content, recipient(row))
        state.add("sent", len(rows))
        report(state)
    return SendSummary(
        campaign_id=campaign_id,
        slug=slug,
        provider=provider,
        dry_run=True,
        sent=state.sent,
        failed=0,
        skipped=0,
        deferred=0,
        unknown=0,
        recovered_unknown=0,
        requeued_unknown=0,
        seconds=time.monotonic() - started,
        totals={},
        stopped=None,
    )
