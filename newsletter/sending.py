"""Sending: an issue to its subscribers (a campaign), to test addresses, or one
transactional message.

A campaign is planned first (:func:`plan_send`: the issue compiled once and checked,
the audience counted, an earlier run of the same issue found), then run
(:func:`send_campaign`): recipients snapshotted into the ledger, then batch after
batch claimed, personalised, handed to the provider and recorded. Sending the same
issue again resumes its campaign; see :mod:`newsletter.ledger` for why nobody is
mailed twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from newsletter import ledger
from newsletter.checks import Finding, check_compiled, has_errors
from newsletter.config import Config
from newsletter.errors import ProviderError, ProviderUnavailable, SendError
from newsletter.issues import ISSUE_NAME, read_issue
from newsletter.mail import format_address, list_unsubscribe, safe_header, shared_list_headers
from newsletter.models import CompiledIssue, Personalization
from newsletter.providers import Batch, Content, Delivery, Recipient, get_provider, local_message
from newsletter.ratelimit import DAY, RateLimiter
from newsletter.render import compile_issue
from newsletter.store import Store, open_store
from newsletter.tokens import (
    DEVELOPMENT_SECRET,
    Links,
    Signer,
    require_secret,
    sample_personalization,
    secret_or_development,
)

TEST_PREFIX = "[TEST] "
# Delivery status -> ledger state: "deferred" goes back to pending for the next run.
LEDGER_STATE = {"sent": "sent", "failed": "failed", "deferred": "pending", "unknown": "unknown"}


def shared_content(
    config: Config,
    *,
    subject: str,
    html: str,
    text: str,
    headers: dict[str, str] | None = None,
    transactional: bool = False,
) -> Content:
    """Content from the configured sender, with ``headers`` shared by every recipient."""
    return Content(
        sender=format_address(config.sender.email, config.sender.name),
        sender_email=config.sender.email,
        sender_name=config.sender.name,
        subject=safe_header("Subject", subject),
        html=html,
        text=text,
        reply_to=config.reply_to,
        headers=headers or {},
        transactional=transactional,
    )


def send_transactional(config: Config, *, to: str, subject: str, html: str, text: str) -> Delivery:
    """One message to one address through the configured provider, recorded in no campaign.

    For mail a reader asked for (double opt-in confirmations, "email me my link"): no
    list headers, no unsubscribe group. Returns the :class:`Delivery` (``sent`` with the
    provider's message id, or ``failed``/``deferred`` with the reason); raises
    :class:`~newsletter.errors.SendError` when the provider cannot be reached or refuses
    the request as a whole (bad credentials, bad request).
    """
    content = shared_content(config, subject=subject, html=html, text=text, transactional=True)
    recipient = Recipient(Personalization(email=safe_header("To", to)))
    with get_provider(config) as provider:
        [delivery] = provider.send_batch(Batch(content, [recipient]))
    return delivery


# -- planning ------------------------------------------------------------------------


@dataclass(frozen=True)
class SendPlan:
    """What ``newsletter send`` would do, shown before it asks to go ahead."""

    compiled: CompiledIssue
    findings: list[Finding]
    provider: str
    topics: tuple[str, ...]  # () = every active subscriber
    audience: ledger.Audience
    campaign: ledger.Campaign | None  # an earlier run of this issue, resumed
    counts: dict[str, int] | None  # its ledger, if there is one
    development_key: bool  # links signed with the development key (outbox only)

    @property
    def slug(self) -> str:
        return self.compiled.issue.slug

    @property
    def subject(self) -> str:
        return self.compiled.subject

    @property
    def has_errors(self) -> bool:
        return has_errors(self.findings)

    def to_send(self, *, retry_unknown: bool = False) -> int:
        """Recipients a run would hand to the provider."""
        if self.counts is None:
            return self.audience.recipients
        waiting = self.counts["pending"]
        if retry_unknown:  # in_flight rows of a dead run become unknown first
            waiting += self.counts["unknown"] + self.counts["in_flight"]
        return waiting


def plan_send(
    config: Config,
    issue_path: Path,
    *,
    provider: str | None = None,
    topics: Sequence[str] | None = None,
) -> SendPlan:
    """Read, compile and check the issue; count its audience; find an earlier run."""
    issue = read_issue(issue_path, topics=config.topic_ids)
    compiled = compile_issue(issue, config)
    findings = list(check_compiled(compiled, config))
    provider_name = provider or config.provider
    store = open_store(config)
    try:
        campaign = ledger.find_campaign(store, issue.slug)
        wanted = store.check_topics(topics) if topics else None
        if campaign is not None:
            if wanted is not None and set(wanted) != set(campaign.topics):
                raise SendError(
                    f"{issue_path}: this issue's campaign started for topics "
                    f"{_topic_list(campaign.topics)}; a campaign keeps its recipients, so "
                    "send it again without --topic to resume it"
                )
            chosen = campaign.topics
            counts: dict[str, int] | None = ledger.state_counts(store, campaign.id)
        else:
            chosen = wanted if wanted is not None else issue.topics
            counts = None
        audience = ledger.audience(store, chosen)
    finally:
        store.close()
    return SendPlan(
        compiled=compiled,
        findings=findings,
        provider=provider_name,
        topics=tuple(chosen),
        audience=audience,
        campaign=campaign,
        counts=counts,
        development_key=_secret(provider_name) == DEVELOPMENT_SECRET,
    )


def _topic_list(topics: Sequence[str]) -> str:
    return ", ".join(topics) if topics else "(all subscribers)"


def _secret(provider: str) -> str:
    """The link-signing key. The outbox may use the development key (so the demo runs on
    a fresh machine: its links cannot work anywhere anyway); real mail never does."""
    return secret_or_development() if provider == "outbox" else require_secret()


def refuse_on_errors(plan: SendPlan) -> None:
    if plan.has_errors:
        errors = sum(finding.level == "error" for finding in plan.findings)
        raise SendError(
            f"{plan.compiled.issue.path}: the pre-send checks found {errors} error(s); "
            "fix them (see 'newsletter check') and send again"
        )


# -- running -------------------------------------------------------------------------


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[Progress], None]


def send_campaign(
    config: Config,
    plan: SendPlan,
    *,
    rate: float | None = None,
    retry_unknown: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> SendSummary:
    """Send (or resume) the issue's campaign; the summary says what this run did.

    A provider refusing or staying unavailable stops the run early, with the reason in
    ``summary.stopped``; everything sent before it is recorded and the next run
    resumes after it.
    """
    refuse_on_errors(plan)
    links = Links(config, Signer(_secret(plan.provider)))
    store = open_store(config)
    try:
        limiter = _limiter(config, store, rate)
        with get_provider(config, plan.provider, limiter=limiter) as provider:
            size = min(provider.batch_size, limiter.largest_grant or provider.batch_size)
            if dry_run:
                return _dry_run(config, plan, store, links, size, progress)
            campaign = plan.campaign or ledger.start_campaign(
                store,
                slug=plan.slug,
                issue_path=str(plan.compiled.issue.path),
                subject=plan.subject,
                topics=plan.topics,
                provider=plan.provider,
            )
            with ledger.Lease(store, campaign) as lease:
                run = _Run(config, plan, store, campaign, links, provider, progress)
                return run.send(lease, size=size, retry_unknown=retry_unknown)
    finally:
        store.close()


def _limiter(config: Config, store: Store, rate: float | None) -> RateLimiter:
    sending = config.sending
    limiter = RateLimiter(rate or sending.rate, per_hour=sending.per_hour, per_day=sending.per_day)
    if sending.per_hour or sending.per_day:
        now = ledger.now()
        limiter.preload(
            ((now - at).total_seconds(), count)
            for at, count in ledger.sent_since(store, now - dt.timedelta(seconds=DAY))
        )
    return limiter


def campaign_content(config: Config, compiled: CompiledIssue, *, test: bool = False) -> Content:
    subject = f"{TEST_PREFIX}{compiled.subject}" if test else compiled.subject
    return shared_content(
        config,
        subject=subject,
        html=compiled.html,
        text=compiled.text,
        headers=shared_list_headers(config),
    )


class _Recipients:
    """Builds each recipient's links, headers and tags; the per-recipient hot path."""

    def __init__(self, config: Config, links: Links, campaign_id: int | None, slug: str) -> None:
        self.config = config
        self.links = links
        self.campaign_id = campaign_id
        self.view_url = links.view(slug)

    def __call__(self, row: ledger.LedgerRecipient) -> Recipient:
        unsubscribe_url = self.links.unsubscribe(row.subscriber_id, self.campaign_id)
        personalization = Personalization(
            email=row.email,
            # A name from a signup form must not be able to break the To header.
            name=" ".join(row.name.split()),
            unsubscribe_url=unsubscribe_url,
            preferences_url=self.links.preferences(row.subscriber_id),
            view_url=self.view_url,
        )
        return Recipient(
            personalization,
            headers={"List-Unsubscribe": list_unsubscribe(self.config, unsubscribe_url)},
            tags={"campaign_id": str(self.campaign_id), "subscriber_id": str(row.subscriber_id)},
        )


class _Run:
    def __init__(
        self,
        config: Config,
        plan: SendPlan,
        store: Store,
        campaign: ledger.Campaign,
        links: Links,
        provider: Any,
        progress: ProgressCallback | None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.campaign = campaign
        self.provider = provider
        self.report = progress or (lambda _: None)
        self.ledger = ledger.Ledger(store, campaign.id)
        self.content = campaign_content(config, plan.compiled)
        self.recipient = _Recipients(config, links, campaign.id, plan.slug)

    def send(self, lease: ledger.Lease, *, size: int, retry_unknown: bool) -> SendSummary:
        started = time.monotonic()
        recovered = self.ledger.recover()
        requeued = self.ledger.requeue_unknown() if retry_unknown else 0
        progress = Progress(total=ledger.state_counts(self.store, self.campaign.id)["pending"])
        self.report(progress)
        stopped: str | None = None
        after = 0
        try:
            while True:
                lease.check()
                claim = self.ledger.claim(after=after, size=size)
                if claim is None:
                    break
                after = claim.last_id
                progress.add("skipped", claim.skipped)
                if claim.recipients:
                    stopped = self._send_batch(claim, progress)
                self.report(progress)
                if stopped:
                    break
        finally:
            self.ledger.finish(error=stopped)
        return SendSummary(
            campaign_id=self.campaign.id,
            slug=self.plan.slug,
            provider=self.plan.provider,
            dry_run=False,
            sent=progress.sent,
            failed=progress.failed,
            skipped=progress.skipped,
            deferred=progress.deferred,
            unknown=progress.unknown,
            recovered_unknown=recovered,
            requeued_unknown=requeued,
            seconds=time.monotonic() - started,
            totals=ledger.state_counts(self.store, self.campaign.id),
            stopped=stopped,
        )

    def _send_batch(self, claim: ledger.Claim, progress: Progress) -> str | None:
        """Hand one claimed batch over and record it; the reason to stop, if any."""
        batch = Batch(self.content, [self.recipient(row) for row in claim.recipients])
        stopped = None
        try:
            deliveries = self.provider.send_batch(batch)
        except (ProviderError, ProviderUnavailable) as error:
            stopped = str(error)
            deliveries = error.deliveries or _undelivered(error, len(claim.recipients))
        except BaseException as error:
            # A bug, Ctrl-C, a full disk: what reached the provider is not known.
            reason = f"interrupted ({type(error).__name__}) while the batch was out"
            self.ledger.record(claim, [("unknown", None, reason)] * len(claim.recipients))
            raise
        outcomes = [(LEDGER_STATE[d.status], d.message_id, d.error) for d in deliveries]
        self.ledger.record(claim, outcomes)
        for row, delivery in zip(claim.recipients, deliveries, strict=True):
            if delivery.bounced:
                self.store.mark(row.subscriber_id, "bounced", reason=delivery.error or "")
            progress.add(delivery.status)
        return stopped


def _undelivered(error: ProviderError | ProviderUnavailable, count: int) -> list[Delivery]:
    """Every recipient of a batch the provider gave up on as a whole."""
    maybe = isinstance(error, ProviderUnavailable) and error.maybe_delivered
    return [Delivery("unknown" if maybe else "deferred", error=str(error))] * count


def _dry_run(
    config: Config,
    plan: SendPlan,
    store: Store,
    links: Links,
    size: int,
    progress: ProgressCallback | None,
) -> SendSummary:
    """Everything but the hand-off: every message built, nothing sent or recorded."""
    started = time.monotonic()
    campaign_id = plan.campaign.id if plan.campaign else None
    recipient = _Recipients(config, links, campaign_id, plan.slug)
    content = campaign_content(config, plan.compiled)
    state = Progress(total=plan.to_send())
    report = progress or (lambda _: None)
    for rows in ledger.upcoming(store, campaign_id=campaign_id, topics=plan.topics, size=size):
        for row in rows:
            local_message(content, recipient(row))
        state.add("sent", len(rows))
        report(state)
    return SendSummary(
        campaign_id=campaign_id,
        slug=plan.slug,
        provider=plan.provider,
        dry_run=True,
        sent=state.sent,
        failed=0,
        skipped=0,
        deferred=0,
        unknown=0,
        recovered_unknown=0,
        requeued_unknown=0,
        seconds=time.monotonic() - started,
        totals=plan.counts or {"pending": plan.audience.recipients},
        stopped=None,
    )


def send_tests(config: Config, plan: SendPlan, addresses: Sequence[str]) -> list[Delivery]:
    """The issue to ``addresses`` with a sample recipient's links, subject prefixed
    ``[TEST]``; recorded in no campaign (and needing no signing key)."""
    refuse_on_errors(plan)
    sample = sample_personalization(config, plan.slug)
    content = campaign_content(config, plan.compiled, test=True)
    recipients = [
        Recipient(
            Personalization(
                email=safe_header("To", address),
                name=sample.name,
                unsubscribe_url=sample.unsubscribe_url,
                preferences_url=sample.preferences_url,
                view_url=sample.view_url,
            ),
            headers={"List-Unsubscribe": list_unsubscribe(config, sample.unsubscribe_url)},
        )
        for address in addresses
    ]
    with get_provider(config, plan.provider) as provider:
        return provider.send_batch(Batch(content, recipients))


# -- status --------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignStatus:
    campaign: ledger.Campaign
    counts: dict[str, int]
    first_errors: list[tuple[str, str]]  # (address, error)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.campaign),
            "counts": self.counts,
            "first_errors": [{"to": who, "error": error} for who, error in self.first_errors],
        }


def campaign_status(config: Config, issue: str | None = None) -> list[CampaignStatus]:
    """Every campaign, or the one of ``issue`` (an issue file or its slug)."""
    store = open_store(config)
    try:
        campaigns = ledger.list_campaigns(store)
        if issue is not None:
            slug = _slug_of(issue)
            campaigns = [campaign for campaign in campaigns if campaign.slug == slug]
        return [
            CampaignStatus(
                campaign,
                ledger.state_counts(store, campaign.id),
                ledger.first_errors(store, campaign.id),
            )
            for campaign in campaigns
        ]
    finally:
        store.close()


def _slug_of(issue: str) -> str:
    """The campaign key of an issue file name (date prefix dropped) or of a bare slug."""
    name = ISSUE_NAME.fullmatch(Path(issue).stem)
    return name["slug"] if name else Path(issue).stem
