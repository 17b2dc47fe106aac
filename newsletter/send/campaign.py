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

import datetime as dt
import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

from newsletter.config import Config
from newsletter.errors import ProviderError, ProviderUnavailable
from newsletter.models import CompiledIssue, Personalization
from newsletter.render.mail import ListUnsubscribe, shared_list_headers
from newsletter.safe_text import without_controls
from newsletter.send import campaign_rows, ledger, ledger_batches
from newsletter.send.lease import Lease
from newsletter.send.ledger_log import LEDGER_STATE, LedgerLog, SendStopped
from newsletter.send.providers import Batch, Content, Delivery, Provider, Recipient, local_message
from newsletter.send.ratelimit import RateLimiter
from newsletter.send.return_tokens import ReturnTokens
from newsletter.store import Store
from newsletter.store.statuses import StatusChange
from newsletter.tokens import DEVELOPMENT_SECRET, Links, Signer

TEST_PREFIX = "[TEST] "


@dataclass
class Progress:
    """Counts of this run so far, given to the progress callback after every batch."""

    total: int  # recipients this run expects to hand over
    done: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    unknown: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, status: str, count: int = 1) -> None:
        """Count ``count`` recipients that ended this run as ``status``."""
        setattr(self, status, getattr(self, status) + count)
        self.done += count

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class SendSummary:
    campaign_id: int | None
    slug: str
    provider: str
    dry_run: bool
    sent: int  # this run
    failed: int
    skipped: int
    deferred: int
    unknown: int
    recovered_unknown: int  # in flight when an earlier run died, found at the start
    requeued_unknown: int  # put back by --retry-unknown
    seconds: float
    totals: dict[str, int]  # the whole campaign's ledger, after this run
    stopped: str | None  # why the run stopped early, if it did
    requeued_failed: int = 0  # put back by --retry-failed
    # A subject test's rest, waiting for its winner: when it is due (run-due sends it),
    # and how many readers it goes to (a sample reader still pending is not one of them).
    rest_at: dt.datetime | None = None
    rest_pending: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rest_at"] = self.rest_at.isoformat() if self.rest_at else None
        return data


def campaign_content(
    config: Config,
    compiled: CompiledIssue,
    *,
    topics: Sequence[str] | None = None,
    test: bool = False,
    view_url: str | None = None,
) -> Content:
    """The issue's content for every recipient, its one shared link already filled in
    (``view_url``: instead of the issue's page in the archive), with the list headers
    every copy shares; ``topics``: the campaign's (default: the issue's)."""
    subject = f"{TEST_PREFIX}{compiled.subject}" if test else compiled.subject
    issue = compiled.issue
    content = Content.from_config(
        config,
        subject=subject,
        html=compiled.html,
        text=compiled.text,
        headers=shared_list_headers(
            config, campaign=issue.slug, topics=issue.topics if topics is None else topics
        ),
    )
    # The view-in-browser link is the same for everyone and carries no token.
    if view_url is None:
        view_url = Links(config, Signer(DEVELOPMENT_SECRET)).view(compiled.issue.slug)
    return replace(
        content.filled({"view_url": view_url}), greeting_fallback=compiled.greeting_fallback
    )


class RecipientBuilder:
    """Each recipient's links, List-Unsubscribe header and tags: the per-recipient hot path."""

    def __init__(
        self,
        config: Config,
        links: Links,
        campaign_id: int | None,
        returns: ReturnTokens | None = None,
        click_key: Callable[[int, int], str] | None = None,
    ) -> None:
        self.links = links
        # tracking.per_subscriber: the reader's part of each tracked link, by subscriber id.
        self.click_key = (
            partial(click_key, campaign_id)
            if click_key is not None and campaign_id is not None
            else None
        )
        self.campaign_id = campaign_id
        self.campaign_tag = str(campaign_id)
        # The one rule for List-Unsubscribe (render/mail.py), made once.
        self.list_unsubscribe = ListUnsubscribe(config)
        # With the return-path tokens: a signed mailto subject and VERP sender per copy.
        self.returns = returns
        self.mailto_token = returns is not None and bool(config.unsubscribe_mailto)
        self.bounce_address = config.bounces.address if returns else None

    def __call__(self, row: ledger_batches.LedgerRecipient) -> Recipient:
        subscriber_id, email, name, link_key = row
        campaign_id = self.campaign_id
        unsubscribe_url, preferences_url = self.links.message_links(
            subscriber_id, link_key, campaign_id
        )
        personalization = Personalization(
            email=email,
            # A name from a signup form must not be able to break the To header.
            name=without_controls(name),
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_url,
            click_key="" if self.click_key is None else self.click_key(subscriber_id),
        )
        token = None
        envelope_sender = None
        if self.returns is not None:
            if self.mailto_token:
                token = self.returns.token("mailto", subscriber_id, link_key, campaign_id)
            if self.bounce_address:
                envelope_sender = self.returns.envelope_sender(
                    self.bounce_address, subscriber_id, link_key, campaign_id
                )
        return Recipient(
            personalization,
            headers={"List-Unsubscribe": self.list_unsubscribe(unsubscribe_url, token)},
            tags={"campaign_id": self.campaign_tag, "subscriber_id": str(subscriber_id)},
            envelope_sender=envelope_sender,
        )


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
                return INTERRUPTED
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
            return INTERRUPTED
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


INTERRUPTED = (
    "interrupted (Ctrl-C): nothing more was handed over, and everyone not yet sent stays "
    "pending; send again to resume"
)


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
