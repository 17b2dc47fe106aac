"""Running a planned send (:func:`send_campaign`): the campaign started or resumed,
recipients snapshotted into the ledger, then batch after batch claimed, personalised,
handed to the provider and recorded. Sending the same issue again resumes its campaign;
see :mod:`newsletter.send.ledger` for why nobody is mailed twice. The plan comes from
:mod:`newsletter.send.plan`; test sends, one-off mail and campaign status have rooms of
their own (``proofs``, ``transactional``, ``status``)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from newsletter.config import Config
from newsletter.models import CompiledIssue
from newsletter.send import campaign_rows, handovers
from newsletter.send.campaign import CampaignRun, dry_run_campaign
from newsletter.send.click_tracking import tracked_content
from newsletter.send.copies import RecipientBuilder, campaign_content
from newsletter.send.lease import Lease
from newsletter.send.plan import SendPlan, refuse_on_errors, signing_secret
from newsletter.send.providers import Content, get_provider
from newsletter.send.ratelimit import DAY, RateLimiter
from newsletter.send.return_tokens import ReturnTokens
from newsletter.send.run_summary import ProgressCallback, SendSummary
from newsletter.send.subject_phases import Phases
from newsletter.send.subject_plan import SubjectPlan
from newsletter.send.subject_test import assign
from newsletter.store import Store, open_store, snapshots
from newsletter.tokens import Links, Signer, TrackingSigner


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
    pick: str | None = None,
    clock: Callable[[], dt.datetime] = campaign_rows.now,
) -> SendSummary:
    """Send (or resume) the issue's campaign; the summary says what this run did.

    A provider refusing or staying unavailable stops the run early, with the reason in
    ``summary.stopped``; everything sent before it is recorded and the next run
    resumes after it. ``notice`` hears what the provider waits for (retries, back-off).
    Setting ``stopping`` (the CLI does on Ctrl-C) ends any wait at once and stops the run
    before its next hand-over, everyone not yet handed over still pending.
    ``stop_when`` is asked before each batch is handed over; a reason it gives stops the
    run there (``summary.stopped``), the rest still pending (a cancelled schedule).

    A subject test (``plan.subject_test``) goes in phases (:class:`Phases`): the sample,
    then, once ``clock()`` passed its wait or ``pick`` (a variant's letter) decided it,
    the rest; ``summary.rest_at`` says when the rest is due while it waits.
    """
    refuse_on_errors(plan)
    secret = signing_secret(plan.provider)
    links = Links(config, Signer(secret))
    returns = ReturnTokens(secret)
    content = campaign_content(config, _as_sent(plan), topics=plan.topics, view_url=plan.view_url)
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
                    total=plan.to_build(),
                    progress=progress,
                    where=None if plan.campaign else plan.segment_where(),
                )
            test = plan.subject_test
            started = plan.campaign or campaign_rows.start_campaign(
                store,
                slug=plan.slug,
                issue_path=str(plan.compiled.issue.path),
                subject=plan.subject,
                topics=plan.topics,
                provider=plan.provider,
                where=plan.segment_where(),
                after_snapshot=None if test is None else _draw_sample(test, clock()),
            )
            if plan.snapshot is None:
                # Also a campaign started before snapshots were kept: from its next run on.
                snapshots.save_snapshot(store, started.id, plan.snapshot_row)
            if plan.switched_from is not None:
                handovers.set_campaign_provider(store, started.id, plan.provider)
            click_key = None
            if config.tracking.clicks or config.tracking.opens:
                signer = TrackingSigner(secret)
                content = tracked_content(config, store, content, signer, started.id)
                if config.tracking.per_subscriber:
                    click_key = signer.reader_key
            recipient = RecipientBuilder(config, links, started.id, returns, click_key)

            def run(content: Content, only: Any = None, offset: int = 0) -> CampaignRun:
                report = progress
                if progress is not None and offset:
                    # One bar over every phase: each run counts from zero.
                    report = lambda done: progress(replace(done, done=done.done + offset))  # noqa: E731
                return CampaignRun(
                    store,
                    started,
                    content,
                    recipient,
                    provider,
                    report,
                    limiter,
                    stopping,
                    stop_when,
                    only,
                )

            with Lease(store, started) as lease:
                if test is None:
                    return run(content).run(
                        lease, size=size, retry_unknown=retry_unknown, retry_failed=retry_failed
                    )
                phases = Phases(store, started, content, run, lease, size)
                return phases.send(
                    retry_unknown=retry_unknown, retry_failed=retry_failed, pick=pick, now=clock()
                )
    finally:
        store.close()


def _draw_sample(test: SubjectPlan, now: dt.datetime) -> Callable[[Connection, int], None]:
    """What the campaign's start writes with its snapshot for a subject test: the
    sample, drawn among the snapshot, and the test's row."""

    def draw(connection: Connection, campaign_id: int) -> None:
        assert test.settings is not None  # a test not started yet
        assign(connection, campaign_id, variants=test.variants, settings=test.settings, now=now)

    return draw


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
