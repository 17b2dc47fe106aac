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
from dataclasses import dataclass

from newsletter.automations.enrolment import enrol_due, has_due, mark_considered
from newsletter.automations.sequences import Step, read_sequences
from newsletter.automations.step_campaigns import StepVersion, campaigns_with_work, version_campaign
from newsletter.config import Config
from newsletter.errors import NewsletterError, SendError
from newsletter.render.checks import Finding, config_findings
from newsletter.send import campaign_rows
from newsletter.send.campaign_rows import Campaign
from newsletter.send.lease import lease_holder
from newsletter.send.plan import SendPlan
from newsletter.send.schedule import why_stopped
from newsletter.send.sending import send_campaign
from newsletter.store import Store, open_store, snapshots

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Say = Callable[[str], None]


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
        campaign = version_campaign(store, version)
        enrol_due(store, step, campaign.id, now)
    else:
        mark_considered(store, step, now)
    return [
        send_version(config, store, step, version, campaign, say, stopping=stopping)
        for campaign in campaigns_with_work(store, step)
        if stopping is None or not stopping.is_set()
    ]


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
        holder = lease_holder(store, campaign.slug)
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
