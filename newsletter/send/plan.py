"""Planning a send: the issue read, compiled and checked, its audience counted and an
earlier run of the same issue found (:func:`plan_send`), before anything is asked or
sent. :mod:`newsletter.send.sending` runs the plan; :mod:`newsletter.send.proofs`
sends it to test addresses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from newsletter.config import AbSettings, Config, ab_settings, missing_measure
from newsletter.errors import SegmentError, SendError
from newsletter.models import CompiledIssue, Issue
from newsletter.render.checks import Finding, check_compiled, config_findings, has_errors
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.segments.saved import Segment
from newsletter.segments.sql import choose, segment_condition
from newsletter.send import campaign_rows, subject_plan, subject_test
from newsletter.send.providers import get_provider
from newsletter.store import Store, open_store, snapshots
from newsletter.tokens import DEVELOPMENT_SECRET, require_secret, secret_or_development


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
    # A subject test (the issue's subject_variants:): the sample, the rest and its time.
    subject_test: subject_plan.SubjectPlan | None = None

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

    def to_build(self) -> int:
        """Messages ``--dry-run`` builds: every recipient still pending (a subject test's
        rest too, with the first subject), or the whole audience of a new campaign."""
        return self.audience.recipients if self.counts is None else self.counts["pending"]

    def to_send(self, *, retry_unknown: bool = False, retry_failed: bool = False) -> int:
        """Recipients a run would hand to the provider."""
        test = self.subject_test
        if self.counts is None:
            return self.audience.recipients if test is None else sum(test.sample)
        waiting = self.counts["pending"]
        if test is not None and not test.rest_due:
            waiting -= test.pending_rest  # they wait for the winner
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
    now: dt.datetime | None = None,
) -> SendPlan:
    """Read, compile and check the issue; count its audience; find an earlier run.

    Unless the plan is for ``--test`` sends, a provider that needs the link-signing key
    and does not have it is refused here, before anything is shown or asked; so is a
    provider missing its own credentials, and a subject test that nothing would measure.
    ``now``: the time a subject test's wait is measured against (default: the clock's).
    """
    now = now or dt.datetime.now(dt.UTC)
    issue = read_issue(issue_path, topics=config.topic_ids)
    chosen_segment = send_segment(config, issue_path, segment, issue.segment)
    compiled = compile_issue(issue, config)
    source = issue_path.read_text(encoding="utf-8")
    snapshot_row = snapshots.snapshot_row(compiled, source, config.root)
    provider_name = provider or config.provider
    findings = [
        *config_findings(config, provider_name),
        *check_compiled(compiled, config, provider_name),
    ]
    development_key = not test and signing_secret(provider_name) == DEVELOPMENT_SECRET
    # A provider that cannot start (an API key or password not exported) is refused
    # now, not after the plan was shown and the campaign started. Building one
    # connects to nothing.
    get_provider(config, provider_name).close()
    settings = ab_settings(config, issue.ab) if issue.subject_variants else None
    if settings is not None and not test:
        reason = missing_measure(config, provider_name, settings.metric)
        if reason is not None:
            raise SendError(f"{issue_path}: subject_variants: {reason}")
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
            chosen = campaign_topics(store, topics, issue)
            counts = None
            switched_from = None
        # A campaign that started keeps the recipients its segment chose then.
        audience = new_audience(store, chosen, chosen_segment if campaign is None else None)
        tested = _subject_test(store, campaign, issue.subject_variants, settings, audience, now)
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
        subject_test=tested,
    )


def _subject_test(
    store: Store,
    campaign: campaign_rows.Campaign | None,
    variants: Sequence[str],
    settings: AbSettings | None,
    audience: campaign_rows.Audience,
    now: dt.datetime,
) -> subject_plan.SubjectPlan | None:
    """The send's subject test: as recorded when its campaign started (whatever the file
    says now), or as it would start."""
    if campaign is not None:
        recorded = subject_test.find_test(store, campaign.id)
        return None if recorded is None else subject_plan.started(store, recorded, now)
    if settings is None:
        return None
    return subject_plan.planned(variants, settings, audience.recipients, now)


def new_audience(
    store: Store, topics: Sequence[str], segment: Segment | None
) -> campaign_rows.Audience:
    """Who a new campaign for ``topics`` reaches, narrowed by ``segment`` as it stands
    now: the plan's audience, and ``newsletter schedule``'s for an issue not started."""
    where = None
    if segment is not None:
        where = segment_condition(segment.tree, now=dt.datetime.now(dt.UTC))
    return campaign_rows.audience(store, topics, where)


def send_segment(
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


def campaign_topics(store: Store, given: Sequence[str] | None, issue: Issue) -> tuple[str, ...]:
    """The topics a new campaign goes to: those given (``--topic``, a schedule entry's),
    checked, else the issue's (a digest's entry keeps none)."""
    return store.check_topics(given) if given else issue.topics


def _topic_list(topics: Sequence[str]) -> str:
    return ", ".join(topics) if topics else "(all subscribers)"


def signing_secret(provider: str) -> str:
    """The link-signing key. The outbox may use the development key (so the demo runs on
    a fresh machine: its links cannot work anywhere anyway); real mail never does."""
    return secret_or_development() if provider == "outbox" else require_secret()


def refuse_bad_pick(plan: SendPlan, pick: str) -> SendPlan:
    """``--pick`` names a variant of a subject test whose sample went out (before it,
    there is nothing to decide); the plan then sends the rest now."""
    test = plan.subject_test
    if test is None or test.test is None:
        what = "has no subject test" if test is None else "has not sent its sample yet"
        raise SendError(
            f"{plan.compiled.issue.path}: --pick decides a subject test after its sample "
            f"went out, and this issue {what}; send it without --pick"
        )
    subject_test.refuse_another_pick(test.test, pick)
    return replace(plan, subject_test=replace(test, picked=True))


def refuse_on_errors(plan: SendPlan) -> None:
    if plan.has_errors:
        errors = sum(finding.level == "error" for finding in plan.findings)
        raise SendError(
            f"{plan.compiled.issue.path}: the pre-send checks found {errors} error(s); "
            "fix them (see 'newsletter check') and send again"
        )
