"""Sending the steps of sequences that are due: ``run-due`` (and ``serve``'s minute loop).

Each version of a step file is one campaign (its slug ``welcome/01-thanks@<hash>``),
started empty. A run adds to it, in one ``INSERT ... SELECT``, every reader who is due
and has had no version of the step yet:

- entered (:mod:`newsletter.store.automation_tables`) at least ``after:`` ago,
- and not so long ago that the step's time had passed when ``run-due`` first saw the
  step (a step added later goes only to readers still before it),
- active now, of the step's topics, and never left since entering (someone who
  unsubscribed and came back has left the sequence: their ``opt_in_at`` is newer),

then sends the campaign through :func:`newsletter.send.sending.send_campaign` like
any issue: the ledger's primary key means a reader is in a step's campaign at most
once, the lease keeps a second ``run-due`` off it, hand-over re-checks that each reader
is still active, a crash leaves at most one batch ``unknown``, and the rate limits
count every campaign's messages. Editing a step starts a new version (a new campaign
and snapshot) for the readers due from then on; who already had an older version gets
none.

A run with nobody due reads only the entries of the last minutes: ``through`` is how
far entries were already considered (less a margin for entries committed late).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, exists, insert, literal, select, true, update
from sqlalchemy.exc import IntegrityError

from newsletter.automations.sequences import Step, read_sequences
from newsletter.config import Config
from newsletter.errors import NewsletterError, SendError
from newsletter.models import CompiledIssue
from newsletter.render.checks import Finding, check_compiled, config_findings
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.send import campaign_rows
from newsletter.send.campaign_rows import Campaign, recipient_condition, write_connection
from newsletter.send.plan import SendPlan
from newsletter.send.schedule import why_stopped
from newsletter.send.sending import send_campaign
from newsletter.store import Store, open_store, snapshots
from newsletter.store.automation_tables import (
    automation_campaigns,
    automation_entries,
    automation_steps,
)
from newsletter.store.database import insert_on_conflict
from newsletter.store.schema import campaigns, ledger, subscribers

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Say = Callable[[str], None]

# Entries are stamped before their transaction commits: a run that moved ``through``
# past a moment may not have seen an entry of that moment yet. Looking this far back
# again costs a few rows; the ledger's key keeps anyone from being added twice.
LATE_COMMIT_MARGIN = dt.timedelta(minutes=10)


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class StepResult:
    automation: str
    step: str
    outcome: str  # sent, held, busy, stopped
    message: str


def run_due_steps(
    config: Config,
    *,
    clock: Clock = system_clock,
    say: Say | None = None,
    stopping: threading.Event | None = None,
) -> list[StepResult]:
    """Add every reader who is due to their steps' campaigns and send those; what became
    of each step that had anyone to send to. A sequence that does not read (a step
    without ``after:``, a folder that is not there) raises before anything is sent.
    Once ``stopping`` is set (Ctrl-C), the step being sent stops before its next
    hand-over, its readers still pending, and no other step starts."""
    tell = say or (lambda message: log.info("%s", message))
    sequences = read_sequences(config)
    if not any(sequence.steps for sequence in sequences):
        return []
    now = clock()
    store = open_store(config)
    try:
        results = []
        for step in [step for sequence in sequences for step in sequence.steps]:
            if stopping is not None and stopping.is_set():
                break  # the next run goes on from here
            results.extend(_run_step(config, store, step, now, tell, stopping))
        return results
    finally:
        store.close()


class StepVersion:
    """The step file as it is now, compiled and checked once per run, when needed."""

    def __init__(self, config: Config, step: Step) -> None:
        self.config = config
        self.step = step
        self._plan: tuple[CompiledIssue, list[Finding], dict[str, Any]] | None = None

    def compiled(self) -> tuple[CompiledIssue, list[Finding], dict[str, Any]]:
        if self._plan is None:
            config, step = self.config, self.step
            issue = read_issue(step.path, topics=config.topic_ids)
            compiled = compile_issue(replace(issue, slug=step.campaign_slug), config)
            findings = [*config_findings(config), *check_compiled(compiled, config)]
            source = step.path.read_text(encoding="utf-8")
            self._plan = compiled, findings, snapshots.snapshot_row(compiled, source, config.root)
        return self._plan

    def errors(self) -> list[Finding]:
        return [finding for finding in self.compiled()[1] if finding.level == "error"]


def _run_step(
    config: Config,
    store: Store,
    step: Step,
    now: dt.datetime,
    say: Say,
    stopping: threading.Event | None,
) -> list[StepResult]:
    version = StepVersion(config, step)
    name = f"{step.automation}/{step.key}"
    if has_due(store, step, now):
        try:
            errors = version.errors()
        except NewsletterError as error:
            errors = [Finding("error", str(error), str(step.path))]
        if errors:
            message = (
                f"{name}: held: the pre-send checks found {len(errors)} error(s): {errors[0]}; "
                "nobody gets this step until they are fixed (see 'newsletter check')"
            )
            say(message)
            return [StepResult(step.automation, step.key, "held", message)]
        campaign = _version_campaign(store, version)
        enrol_due(store, step, campaign.id, now)
    else:
        mark_considered(store, step, now)
    return [
        send_version(config, store, step, version, campaign, say, stopping=stopping)
        for campaign in campaigns_with_work(store, step)
        if stopping is None or not stopping.is_set()
    ]


def _this_step(step: Step) -> Any:
    return (automation_steps.c.automation == step.automation) & (
        automation_steps.c.step == step.key
    )


def _step_row(
    connection: Connection, step: Step, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """(started, considered through) of the step; the row is made on first sight and
    locked for this transaction on PostgreSQL (SQLite's write lock is already held)."""
    query = select(automation_steps.c.started_at, automation_steps.c.through).where(
        _this_step(step)
    )
    row = connection.execute(query.with_for_update()).one_or_none()
    if row is None:
        # The step exists since its file was written (or checked out), not only since
        # this run saw it: who became active in between is still before its time.
        written = dt.datetime.fromtimestamp(step.path.stat().st_mtime, dt.UTC)
        started_at = min(now, written)
        connection.execute(
            insert_on_conflict(connection, automation_steps)
            .values(
                automation=step.automation,
                step=step.key,
                started_at=started_at,
                through=started_at - step.after,
            )
            .on_conflict_do_nothing()
        )
        row = connection.execute(query.with_for_update()).one()
    return row.started_at, row.through


def due_readers(
    connection: Connection,
    step: Step,
    started_at: dt.datetime,
    through: dt.datetime,
    now: dt.datetime,
) -> Any:
    """The readers due for the step by ``now`` who had no version of it, as a SELECT."""
    since = max(through - LATE_COMMIT_MARGIN, started_at - step.after)
    versions = connection.scalars(
        select(automation_campaigns.c.campaign_id).where(
            automation_campaigns.c.automation == step.automation,
            automation_campaigns.c.step == step.key,
        )
    ).all()
    return _due_readers(step, since, now - step.after, list(versions))


def has_due(store: Store, step: Step, now: dt.datetime) -> bool:
    """Whether anyone is due for the step (cheap: an index range of recent entries)."""
    with write_connection(store.engine) as connection, connection.begin():
        started_at, through = _step_row(connection, step, now)
        due = due_readers(connection, step, started_at, through, now)
        return bool(connection.scalar(select(exists(due.limit(1)))))


def mark_considered(store: Store, step: Step, now: dt.datetime) -> None:
    """Nobody was due: the next run need not read these entries again."""
    with write_connection(store.engine) as connection, connection.begin():
        _started_at, through = _step_row(connection, step, now)
        if now - step.after > through:
            connection.execute(
                update(automation_steps).where(_this_step(step)).values(through=now - step.after)
            )


def enrol_due(store: Store, step: Step, campaign_id: int, now: dt.datetime) -> int:
    """Add the readers due for ``step`` by ``now`` to the campaign (pending); how many."""
    with write_connection(store.engine) as connection, connection.begin():
        started_at, through = _step_row(connection, step, now)
        due = due_readers(connection, step, started_at, through, now).subquery()
        rows = select(
            literal(campaign_id),
            due.c.subscriber_id,
            literal("pending"),
            literal(0),
            literal(campaign_rows.now(), type_=ledger.c.updated_at.type),
        ).where(true())  # SQLite reads "SELECT ... ON CONFLICT" only after a WHERE
        # RETURNING, to count them: psycopg gives no row count for INSERT ... SELECT.
        added = len(
            connection.execute(
                insert_on_conflict(connection, ledger)
                .from_select(
                    ["campaign_id", "subscriber_id", "state", "attempts", "updated_at"], rows
                )
                .on_conflict_do_nothing()
                .returning(ledger.c.subscriber_id)
            ).all()
        )
        if added:
            connection.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(recipients=campaigns.c.recipients + added, finished_at=None)
            )
        if now - step.after > through:
            connection.execute(
                update(automation_steps).where(_this_step(step)).values(through=now - step.after)
            )
    return added


def _due_readers(step: Step, since: dt.datetime, until: dt.datetime, versions: list[int]) -> Any:
    """``SELECT subscriber_id`` of readers due for the step who had none of ``versions``
    (its campaigns). The look-up names each campaign: the ledger's key is (campaign,
    subscriber), so a look-up by subscriber alone would read the whole index per reader."""
    due = (
        select(automation_entries.c.subscriber_id)
        .join(subscribers, subscribers.c.id == automation_entries.c.subscriber_id)
        .where(
            automation_entries.c.entered_at > since,
            automation_entries.c.entered_at <= until,
            recipient_condition(step.topics),
            subscribers.c.opt_in_at <= automation_entries.c.entered_at,
        )
    )
    for campaign_id in versions:
        due = due.where(
            ~exists().where(
                ledger.c.campaign_id == campaign_id,
                ledger.c.subscriber_id == automation_entries.c.subscriber_id,
            )
        )
    return due


def _version_campaign(store: Store, version: StepVersion) -> Campaign:
    """The campaign of the step file as it is now; started empty, with its snapshot,
    if this version is new. (Another process starting it at the same moment: theirs.)"""
    step = version.step
    found = campaign_rows.find_campaign(store, step.campaign_slug)
    if found is not None:
        return found
    compiled, _findings, snapshot_row = version.compiled()
    try:
        with write_connection(store.engine) as connection, connection.begin():
            campaign_id = connection.scalar(
                insert(campaigns)
                .values(
                    slug=step.campaign_slug,
                    issue_path=str(step.path),
                    subject=compiled.subject,
                    topics=list(step.topics),
                    provider=version.config.provider,
                    recipients=0,
                    created_at=campaign_rows.now(),
                )
                .returning(campaigns.c.id)
            )
            connection.execute(
                insert(automation_campaigns).values(
                    campaign_id=campaign_id, automation=step.automation, step=step.key
                )
            )
            # What this version sends, kept before anyone is added to it.
            connection.execute(
                insert(snapshots.issue_snapshots).values(
                    **snapshot_row, campaign_id=campaign_id, created_at=campaign_rows.now()
                )
            )
    except IntegrityError:
        pass
    found = campaign_rows.find_campaign(store, step.campaign_slug)
    assert found is not None
    return found


def campaigns_with_work(store: Store, step: Step) -> list[Campaign]:
    """The step's campaigns (any version) with readers pending or left in flight."""
    with store.engine.connect() as connection:
        ids = connection.scalars(
            select(automation_campaigns.c.campaign_id)
            .join(campaigns, campaigns.c.id == automation_campaigns.c.campaign_id)
            .where(
                automation_campaigns.c.automation == step.automation,
                automation_campaigns.c.step == step.key,
                campaigns.c.finished_at.is_(None),
                exists().where(
                    ledger.c.campaign_id == automation_campaigns.c.campaign_id,
                    ledger.c.state.in_(("pending", "in_flight")),
                ),
            )
            .order_by(automation_campaigns.c.campaign_id)
        ).all()
        slugs = connection.scalars(
            select(campaigns.c.slug).where(campaigns.c.id.in_(ids)).order_by(campaigns.c.id)
        ).all()
    return [c for slug in slugs if (c := campaign_rows.find_campaign(store, slug)) is not None]


def send_version(
    config: Config,
    store: Store,
    step: Step,
    version: StepVersion,
    campaign: Campaign,
    say: Say,
    *,
    retry_unknown: bool = False,
    retry_failed: bool = False,
    stopping: threading.Event | None = None,
) -> StepResult:
    """Send one version's campaign of the step: its pending readers (and, with
    ``retry_unknown``, those whose copy is unknown, each at the risk of a duplicate;
    with ``retry_failed``, those the provider refused)."""
    name = f"{step.automation}/{step.key}"
    try:
        compiled, findings, snapshot_row = version.compiled()
    except NewsletterError as error:
        message = f"{name}: held: {error}"
        say(message)
        return StepResult(step.automation, step.key, "held", message)
    provider = config.provider
    plan = SendPlan(
        compiled=compiled,
        # An older version's snapshot is what goes out; only the config's findings
        # (a missing key, an unauthenticated sender) still apply to it.
        findings=findings if campaign.slug == step.campaign_slug else config_findings(config),
        provider=provider,
        topics=tuple(campaign.topics),
        audience=campaign_rows.Audience(0, {}, 0),
        campaign=campaign,
        counts=campaign_rows.state_counts(store, campaign.id),
        development_key=False,
        switched_from=campaign.provider if campaign.provider != provider else None,
        snapshot_row=snapshot_row,
        snapshot=snapshots.find_snapshot(store, campaign.id),
        view_url=f"{config.site_url}/",
    )
    pending = plan.to_send(retry_unknown=retry_unknown, retry_failed=retry_failed)
    say(f"{name}: sending to {pending} reader(s) through {provider} (campaign {campaign.id})")
    try:
        summary = send_campaign(
            config,
            plan,
            retry_unknown=retry_unknown,
            retry_failed=retry_failed,
            notice=lambda message: say(f"{name}: {message}"),  # a wait, a retry
            stopping=stopping,
        )
    except SendError as error:
        holder = _lease_holder(store, campaign.id)
        if holder is not None:
            message = f"{name}: another process is sending it ({holder}); left to it"
            say(message)
            return StepResult(step.automation, step.key, "busy", message)
        message = f"{name}: held: {error}"
        say(message)
        return StepResult(step.automation, step.key, "held", message)
    totals = summary.totals
    if summary.stopped or totals.get("pending") or totals.get("in_flight"):
        reason = why_stopped(summary, "readers are still pending")
        message = f"{name}: stopped ({reason}); the next run-due resumes it"
        say(message)
        return StepResult(step.automation, step.key, "stopped", message)
    message = (
        f"{name}: campaign {campaign.id}: sent {summary.sent}, failed {summary.failed}, "
        f"skipped {summary.skipped}, unknown {summary.unknown}"
    )
    say(message)
    return StepResult(step.automation, step.key, "sent", message)


def _lease_holder(store: Store, campaign_id: int) -> str | None:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(campaigns.c.lease_owner, campaigns.c.lease_expires_at).where(
                campaigns.c.id == campaign_id
            )
        ).one_or_none()
    if row is None or row.lease_owner is None or row.lease_expires_at <= campaign_rows.now():
        return None
    host, _, rest = row.lease_owner.partition(":")
    return f"process {rest.partition(':')[0]} on {host}"
