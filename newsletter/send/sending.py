"""Sending: an issue to its subscribers (a campaign), to test addresses, or one
transactional message.

A campaign is planned first (:func:`plan_send`: the issue compiled once and checked,
the audience counted, an earlier run of the same issue found), then run
(:func:`send_campaign`): recipients snapshotted into the ledger, then batch after
batch claimed, personalised, handed to the provider and recorded. Sending the same
issue again resumes its campaign; see :mod:`newsletter.send.ledger` for why nobody is
mailed twice.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from newsletter.config import Config
from newsletter.errors import ProviderError, ProviderUnavailable, SegmentError, SendError
from newsletter.models import CompiledIssue, Personalization
from newsletter.render.checks import Finding, check_compiled, config_findings, has_errors
from newsletter.render.compile import compile_issue
from newsletter.render.issues import ISSUE_NAME, read_issue
from newsletter.render.mail import list_unsubscribe, safe_header
from newsletter.segments.language import Segment
from newsletter.segments.sql import choose, segment_condition
from newsletter.send import campaign_rows
from newsletter.send.campaign import (
    CampaignRun,
    ProgressCallback,
    RecipientBuilder,
    SendSummary,
    campaign_content,
    dry_run_campaign,
)
from newsletter.send.click_tracking import tracked_content
from newsletter.send.lease import Lease
from newsletter.send.providers import Batch, Content, Delivery, Recipient, get_provider
from newsletter.send.ratelimit import DAY, RateLimiter
from newsletter.send.return_tokens import ReturnTokens
from newsletter.store import Store, open_store, snapshots
from newsletter.store.returns import blocked_copies
from newsletter.tokens import (
    DEVELOPMENT_SECRET,
    Links,
    Signer,
    TrackingSigner,
    require_secret,
    sample_personalization,
    secret_or_development,
)


def send_transactional(config: Config, *, to: str, subject: str, html: str, text: str) -> Delivery:
    """One message to one address through the configured provider, recorded in no campaign.

    For mail a reader asked for (double opt-in confirmations, "email me my link"): no
    list headers, no unsubscribe group. Returns the :class:`Delivery` (``sent`` with the
    provider's message id, or ``failed``/``deferred`` with the reason); raises
    :class:`~newsletter.errors.SendError` when the provider cannot be reached or refuses
    the request as a whole (bad credentials, bad request).
    """
    content = Content.from_config(config, subject=subject, html=html, text=text, transactional=True)
    recipient = Recipient(Personalization(email=safe_header("To", to)))
    with get_provider(config) as provider:
        [delivery] = provider.send_batch(Batch(content, [recipient]))
    return delivery


EVENT_SOURCES = {
    "sendgrid": "SendGrid's Event Webhook settles them as its events arrive",
    "postmark": "Postmark's webhooks settle them as its delivery and bounce records arrive",
    "mailgun": "Mailgun's webhooks settle them as its delivered and failed events arrive",
    "ses": "SES's events (through SNS) settle them as they arrive",
}


def unknown_hint(provider: str) -> str:
    """How a campaign's ``unknown`` recipients get settled with this provider."""
    if provider in EVENT_SOURCES:
        return (
            f"{EVENT_SOURCES[provider]}; --retry-unknown resends the rest (at the risk of a "
            "duplicate each)"
        )
    where = "the outbox folder" if provider == "outbox" else "the SMTP server's log"
    return (
        f"{provider} reports no events: look them up in {where} (at most one per "
        "connection), then --retry-unknown resends them (at the risk of a duplicate each)"
    )


# -- planning ------------------------------------------------------------------------


@dataclass(frozen=True)
class SendPlan:
    """What ``newsletter send`` would do, shown before it asks to go ahead."""

    compiled: CompiledIssue
    findings: list[Finding]
    provider: str
    topics: tuple[str, ...]  # () = every active subscriber
    audience: campaign_rows.Audience
    campaign: campaign_rows.Campaign | None  # an earlier run of this issue, resumed
    counts: dict[str, int] | None  # its ledger, if there is one
    development_key: bool  # links signed with the development key (outbox only)
    # The provider the campaign used so far, when this run switches to another one.
    switched_from: str | None = None
    # What to keep when the campaign starts (see newsletter.store.snapshots).
    snapshot_row: dict[str, Any] = field(default_factory=dict)
    # What the resumed campaign sent when it started: the rest get the same.
    snapshot: snapshots.Snapshot | None = None
    # Reasons to think twice (the file changed since the campaign started; the same
    # issue went out under another name): shown, and asked about, before sending.
    warnings: tuple[str, ...] = ()
    # The "view in your browser" link, when it is not the issue's page in the archive
    # (an automation's step has none: see newsletter.automations).
    view_url: str | None = None
    # Who among the topics' readers gets it (--segment, or the front matter's segment:).
    segment: Segment | None = None

    def segment_where(self) -> Any:
        """The segment's condition on ``subscribers`` as of now, or None."""
        if self.segment is None:
            return None
        return segment_condition(self.segment.tree, now=dt.datetime.now(dt.UTC))

    @property
    def slug(self) -> str:
        return self.compiled.issue.slug

    @property
    def subject(self) -> str:
        return self.compiled.subject

    @property
    def has_errors(self) -> bool:
        return has_errors(self.findings)

    def to_send(self, *, retry_unknown: bool = False, retry_failed: bool = False) -> int:
        """Recipients a run would hand to the provider."""
        if self.counts is None:
            return self.audience.recipients
        waiting = self.counts["pending"]
        if retry_failed:
            waiting += self.counts["failed"]
        if retry_unknown:  # in_flight rows of a dead run become unknown first
            waiting += self.counts["unknown"] + self.counts["in_flight"]
        return waiting


def plan_send(
    config: Config,
    issue_path: Path,
    *,
    provider: str | None = None,
    topics: Sequence[str] | None = None,
    test: bool = False,
    switch_provider: bool = False,
    segment: str | None = None,
) -> SendPlan:
    """Read, compile and check the issue; count its audience; find an earlier run.

    Unless the plan is for ``--test`` sends, a provider that needs the link-signing key
    and does not have it is refused here, before anything is shown or asked; so is a
    provider missing its own credentials.
    """
    issue = read_issue(issue_path, topics=config.topic_ids)
    chosen_segment = _segment(config, issue_path, segment, issue.segment)
    compiled = compile_issue(issue, config)
    source = issue_path.read_text(encoding="utf-8")
    snapshot_row = snapshots.snapshot_row(compiled, source, config.root)
    provider_name = provider or config.provider
    findings = [*config_findings(config, provider_name), *check_compiled(compiled, config)]
    development_key = not test and _secret(provider_name) == DEVELOPMENT_SECRET
    # A provider that cannot start (an API key or password not exported) is refused
    # now, not after the plan was shown and the campaign started. Building one
    # connects to nothing.
    get_provider(config, provider_name).close()
    store = open_store(config)
    try:
        campaign = campaign_rows.find_campaign(store, issue.slug)
        wanted = store.check_topics(topics) if topics else None
        if campaign is not None:
            if wanted is not None and set(wanted) != set(campaign.topics):
                raise SendError(
                    f"{issue_path}: this issue's campaign started for topics "
                    f"{_topic_list(campaign.topics)}; a campaign keeps its recipients, so "
                    "send it again without --topic to resume it"
                )
            if segment is not None:
                raise SendError(
                    f"{issue_path}: this issue's campaign {campaign.id} started on "
                    f"{campaign.created_at:%Y-%m-%d %H:%M} UTC; a campaign keeps its "
                    "recipients, so send it again without --segment to resume it"
                )
            chosen = campaign.topics
            counts: dict[str, int] | None = campaign_rows.state_counts(store, campaign.id)
            switched_from = _check_same_provider(
                issue_path, campaign, provider_name, test=test, switch=switch_provider
            )
        else:
            chosen = wanted if wanted is not None else issue.topics
            counts = None
            switched_from = None
        where = None
        if campaign is None and chosen_segment is not None:
            where = segment_condition(chosen_segment.tree, now=dt.datetime.now(dt.UTC))
        audience = campaign_rows.audience(store, chosen, where)
        snapshot = snapshots.find_snapshot(store, campaign.id) if campaign else None
        warnings = _snapshot_warnings(store, issue_path, campaign, snapshot, snapshot_row)
    finally:
        store.close()
    return SendPlan(
        compiled=compiled,
        findings=findings,
        provider=provider_name,
        topics=tuple(chosen),
        audience=audience,
        segment=chosen_segment,
        campaign=campaign,
        counts=counts,
        development_key=development_key,
        switched_from=switched_from,
        snapshot_row=snapshot_row,
        snapshot=snapshot,
        warnings=warnings,
    )


def _segment(
    config: Config, issue_path: Path, given: str | None, front_matter: str | None
) -> Segment | None:
    """The segment of this send: ``--segment``, else the issue's ``segment:``."""
    if given is not None:
        return choose(config, given)
    if front_matter is None:
        return None
    try:
        return choose(config, front_matter)
    except SegmentError as error:
        raise SegmentError(f"{issue_path}: front matter: segment: {error}") from None


def _snapshot_warnings(
    store: Store,
    issue_path: Path,
    campaign: campaign_rows.Campaign | None,
    snapshot: snapshots.Snapshot | None,
    row: dict[str, Any],
) -> tuple[str, ...]:
    if campaign is not None:
        if snapshot is None or snapshot.source_hash == row["source_hash"]:
            return ()
        return (
            f"{issue_path} changed after its campaign {campaign.id} started "
            f"({campaign.created_at:%Y-%m-%d %H:%M} UTC): the rest of its recipients get "
            "the issue as it was then, which the archive keeps showing; to mail the new "
            "text as a new issue, give the file a new name",
        )
    return tuple(
        f"{issue_path} has the same title and text as '{slug}', already sent (campaign "
        f"{campaign_id}): if the file was renamed, sending it mails everyone again"
        for slug, campaign_id in snapshots.same_content(
            store, row["content_hash"], other_than=row["slug"]
        )
    )


def _check_same_provider(
    issue_path: Path, campaign: campaign_rows.Campaign, provider: str, *, test: bool, switch: bool
) -> str | None:
    """One provider per campaign: resuming with another is refused unless asked for,
    so no editor believes readers got mail that went to the outbox. The old provider's
    name when switching, else None."""
    if test or campaign.provider == provider:
        return None
    if not switch:
        raise SendError(
            f"{issue_path}: this issue's campaign {campaign.id} was sent through "
            f"{campaign.provider}, not {provider}; resume it with --provider "
            f"{campaign.provider}, or add --switch-provider to send the rest through {provider}"
        )
    return campaign.provider


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


# -- running ---------------------------------------------------------------------------


def send_campaign(
    config: Config,
    plan: SendPlan,
    *,
    rate: float | None = None,
    retry_unknown: bool = False,
    retry_failed: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    notice: Callable[[str], None] | None = None,
    stopping: threading.Event | None = None,
    stop_when: Callable[[], str | None] | None = None,
) -> SendSummary:
    """Send (or resume) the issue's campaign; the summary says what this run did.

    A provider refusing or staying unavailable stops the run early, with the reason in
    ``summary.stopped``; everything sent before it is recorded and the next run
    resumes after it. ``notice`` hears what the provider waits for (retries, back-off).
    Setting ``stopping`` (the CLI does on Ctrl-C) ends any wait at once and stops the run
    before its next hand-over, everyone not yet handed over still pending.
    ``stop_when`` is asked before each batch is handed over; a reason it gives stops the
    run there (``summary.stopped``), the rest still pending (a cancelled schedule).
    """
    refuse_on_errors(plan)
    secret = _secret(plan.provider)
    links = Links(config, Signer(secret))
    returns = ReturnTokens(secret)
    content = campaign_content(config, _as_sent(plan), view_url=plan.view_url)
    store = open_store(config)
    try:
        limiter = _limiter(config, store, rate)
        with get_provider(config, plan.provider) as provider:
            if notice is not None:
                provider.notify = notice
            size = min(provider.batch_size, limiter.largest_grant or provider.batch_size)
            if dry_run:
                campaign_id = plan.campaign.id if plan.campaign else None
                return dry_run_campaign(
                    store,
                    slug=plan.slug,
                    provider=plan.provider,
                    campaign_id=campaign_id,
                    topics=plan.topics,
                    content=content,
                    recipient=RecipientBuilder(config, links, campaign_id, returns),
                    size=size,
                    total=plan.to_send(),
                    progress=progress,
                    where=None if plan.campaign else plan.segment_where(),
                )
            started = plan.campaign or campaign_rows.start_campaign(
                store,
                slug=plan.slug,
                issue_path=str(plan.compiled.issue.path),
                subject=plan.subject,
                topics=plan.topics,
                provider=plan.provider,
                where=plan.segment_where(),
            )
            if plan.snapshot is None:
                # Also a campaign started before snapshots were kept: from its next run on.
                snapshots.save_snapshot(store, started.id, plan.snapshot_row)
            if plan.switched_from is not None:
                campaign_rows.set_campaign_provider(store, started.id, plan.provider)
            click_key = None
            if config.tracking.clicks or config.tracking.opens:
                signer = TrackingSigner(secret)
                content = tracked_content(config, store, content, signer, started.id)
                if config.tracking.per_subscriber:
                    click_key = signer.reader_key
            run = CampaignRun(
                store,
                started,
                content,
                RecipientBuilder(config, links, started.id, returns, click_key),
                provider,
                progress,
                limiter,
                stopping,
                stop_when,
            )
            with Lease(store, started) as lease:
                return run.run(
                    lease, size=size, retry_unknown=retry_unknown, retry_failed=retry_failed
                )
    finally:
        store.close()


def _as_sent(plan: SendPlan) -> CompiledIssue:
    """The compiled issue a resumed campaign started with, so that every recipient of a
    campaign gets the same issue (and the archive shows what they got)."""
    snapshot = plan.snapshot
    if snapshot is None:
        return plan.compiled
    return replace(plan.compiled, subject=snapshot.subject, html=snapshot.html, text=snapshot.text)


def _limiter(config: Config, store: Store, rate: float | None) -> RateLimiter:
    sending = config.sending
    limiter = RateLimiter(rate or sending.rate, per_hour=sending.per_hour, per_day=sending.per_day)
    if sending.per_hour or sending.per_day:
        now = campaign_rows.now()
        limiter.preload(
            ((now - at).total_seconds(), count)
            for at, count in campaign_rows.sent_since(store, now - dt.timedelta(seconds=DAY))
        )
    return limiter


TEST_SAMPLE_HEADER = "X-Newsletter-Test"
TEST_SAMPLE_NOTE = (
    "proof: the greeting uses no subscriber's name; the unsubscribe and preference links "
    "are samples that change nothing"
)


def send_tests(config: Config, plan: SendPlan, addresses: Sequence[str]) -> list[Delivery]:
    """The issue to ``addresses`` with a sample recipient's links, subject prefixed
    ``[TEST]``; recorded in no campaign (and needing no signing key)."""
    refuse_on_errors(plan)
    sample = sample_personalization(config, plan.slug)
    content = campaign_content(config, plan.compiled, test=True)
    recipients = [
        Recipient(
            # Addressed to the proof's own address, with no made-up name: the greeting
            # shows its fallback ("Hi there,"), and a header says what is a sample.
            Personalization(
                email=safe_header("To", address),
                unsubscribe_url=sample.unsubscribe_url,
                preferences_url=sample.preferences_url,
                view_url=sample.view_url,
            ),
            headers={
                "List-Unsubscribe": list_unsubscribe(config, sample.unsubscribe_url),
                TEST_SAMPLE_HEADER: TEST_SAMPLE_NOTE,
            },
        )
        for address in addresses
    ]
    with get_provider(config, plan.provider) as provider:
        try:
            return provider.send_batch(Batch(content, recipients))
        except (ProviderError, ProviderUnavailable) as error:
            raise SendError(_why_the_test_stopped(error, len(addresses))) from error


def _why_the_test_stopped(error: ProviderError | ProviderUnavailable, count: int) -> str:
    """The provider's reason, and what it means for a test send (there is no campaign)."""
    deliveries = error.deliveries or []
    sent = sum(delivery.status == "sent" for delivery in deliveries)
    what = "the test message was" if count == 1 else f"the {count} test messages were"
    if sent:
        what = f"{count - sent} of the {count} test messages were"
    return (
        f"{str(error).rstrip('.')}; {what} not sent (test sends are recorded nowhere): "
        "send the test again once that is fixed"
    )


# -- status --------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignStatus:
    campaign: campaign_rows.Campaign
    counts: dict[str, int]
    first_errors: list[tuple[str, str]]  # (address, error)
    reactions: dict[str, int]  # see campaign_rows.reactions
    handovers: dict[str, int] = field(default_factory=dict)  # provider -> handed over
    blocked: int = 0  # copies refused as a policy block (failed; nobody suppressed)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.campaign),
            "counts": self.counts,
            "blocked": self.blocked,
            "first_errors": [{"to": who, "error": error} for who, error in self.first_errors],
            "reactions": self.reactions,
            "handed_over": self.handovers,
        }


def campaign_status(config: Config, issue: str | None = None) -> list[CampaignStatus]:
    """Every campaign, or the one of ``issue`` (an issue file or its slug)."""
    store = open_store(config)
    try:
        campaigns = campaign_rows.list_campaigns(store)
        if issue is not None:
            slug = _slug_of(issue)
            campaigns = [campaign for campaign in campaigns if campaign.slug == slug]
        return [
            CampaignStatus(
                campaign,
                campaign_rows.state_counts(store, campaign.id),
                campaign_rows.first_errors(store, campaign.id),
                campaign_rows.reactions(store, campaign.id),
                campaign_rows.handovers(store, campaign.id),
                blocked_copies(store, campaign.id),
            )
            for campaign in campaigns
        ]
    finally:
        store.close()


def _slug_of(issue: str) -> str:
    """The campaign key of an issue file name (date prefix dropped) or of a bare slug."""
    name = ISSUE_NAME.fullmatch(Path(issue).stem)
    return name["slug"] if name else Path(issue).stem
