"""``newsletter schedule`` and ``newsletter run-due``, and the ``send --at`` branch."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.cli.ctrl_c import stop_on_ctrl_c
from newsletter.config import Config
from newsletter.send.campaign_rows import handed_over, outcome_unknown
from newsletter.send.plan import SendPlan
from newsletter.send.schedule import run_due
from newsletter.send.schedule_cancel import cancel
from newsletter.send.schedule_queue import Scheduled, list_schedule, schedule_issue
from newsletter.send.schedule_times import front_matter_send_at, parse_when, system_clock, time_zone


def requested_time(
    config: Config, issue: Path, *, at: str | None, zone: str | None, front_matter: bool
) -> tuple[dt.datetime, str] | None:
    """When ``send`` should schedule the issue (UTC, zone name), or None to send now."""
    zone_name = zone or config.timezone
    tz = time_zone(zone_name, what="--tz" if zone else "newsletter.yaml: timezone")
    if at is not None:
        return parse_when(at, tz, now=system_clock(), what="--at"), zone_name
    if not front_matter:
        return None
    value = front_matter_send_at(issue)
    if value is None:
        return None
    return parse_when(value, tz, now=system_clock(), what=f"{issue}: send_at"), zone_name


def schedule_planned(
    config: Config,
    plan: SendPlan,
    when: tuple[dt.datetime, str],
    say: Callable[[str], None],
    *,
    yes: bool,
    as_json: bool,
) -> None:
    send_at, zone = when
    local = send_at.astimezone(time_zone(zone, what="--tz"))
    if not yes:
        click.confirm(
            f"Schedule for {_local(local)} ({zone}), to {plan.audience.recipients} "
            f"recipient(s) through {plan.provider}?",
            abort=True,
            err=as_json,
        )
    entry = schedule_issue(config, plan, send_at, zone=zone)
    if as_json:
        click.echo(json.dumps({"scheduled": entry.as_dict()}, indent=2))
    say(
        f"Scheduled:  {entry.slug} for {_local(entry.local_time)} ({zone}). "
        "'newsletter run-due' (from cron) or 'newsletter serve' sends it then; "
        "'newsletter schedule' shows the queue."
    )


def _count(audience: int | None) -> str:
    return "?" if audience is None else str(audience)  # the issue file cannot be read


def _local(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M %Z}"


@cli.group(invoke_without_command=True)
@click.option("--all", "show_sent", is_flag=True, help="Also list issues already sent.")
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@pass_state
@click.pass_context
def schedule(ctx: click.Context, state: State, show_sent: bool, as_json: bool) -> None:
    """List scheduled issues: when (in the editor's time zone), audience, provider.

    Issues are scheduled with 'newsletter send ISSUE --at WHEN' or 'send_at:' in
    the issue; 'newsletter run-due' (or 'newsletter serve') sends them when due.

    \b
    Examples:
      newsletter schedule
      newsletter schedule cancel issues/2026-12-01-winter.md
    """
    if ctx.invoked_subcommand is not None:
        return
    entries = list_schedule(state.config, include_sent=show_sent)
    if as_json:
        click.echo(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    if not entries:
        click.echo("Nothing scheduled.")
        return
    rows = [("ISSUE", "WHEN", "AUDIENCE", "PROVIDER", "STATE")]
    rows += [
        (e.slug, _local(e.local_time), _count(e.audience), e.provider, e.state) for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for entry in entries:
        if entry.note:
            click.echo(f"{entry.slug}: {entry.note}")


@schedule.command("cancel")
@click.argument("issue")
@pass_state
def cancel_command(state: State, issue: str) -> None:
    """Take ISSUE (an issue file or its slug) off the schedule.

    If its send has started, a run-due sending it right now stops before its next
    batch; whoever was not yet sent stays pending, and 'newsletter send ISSUE' resumes
    the campaign. The output says which happened.

    \b
    Example:
      newsletter schedule cancel issues/2026-12-01-winter.md
    """
    done = cancel(state.config, issue)
    entry: Scheduled = done.entry
    click.echo(f"Cancelled: {entry.slug} (was due {_local(entry.local_time)}).")
    if done.campaign_id is None or done.counts is None:
        return
    counts = done.counts
    handed = handed_over(counts)
    if done.sender is not None:
        click.echo(
            f"Its campaign {done.campaign_id} is being sent right now by {done.sender}: it "
            f"stops before its next batch and says so ({handed} handed over so far); the "
            f"rest stay pending. 'newsletter send {issue}' resumes it."
        )
    else:
        # Each state by its own name: a refused copy was not handed over, and an
        # unknown one may have been (docs/reports.md).
        shown = [f"{handed} handed over"]
        if counts["failed"]:
            shown.append(f"{counts['failed']} failed")
        if unknown := outcome_unknown(counts):
            shown.append(f"{unknown} unknown (may have been handed over)")
        click.echo(
            f"Its campaign {done.campaign_id} had started: {', '.join(shown)}, "
            f"{counts['pending']} pending, who stay pending. 'newsletter send {issue}' "
            "resumes it."
        )


@cli.command("run-due")
@pass_state
def run_due_command(state: State) -> None:
    """Send every scheduled issue and every automation step whose time has come, then exit.

    Safe to start every minute from cron or a systemd timer: two runs at once never
    send an issue twice (the campaign's lease), and a run with nothing due does
    nothing. An issue whose checks now fail is held, with the reason shown by
    'newsletter schedule'; every later run names it as skipped, with the reason, until
    it is sent, scheduled again or cancelled. The steps of sequences
    (docs/automations.md) go to every reader due for them, once each, and a digest
    whose time has come turns its feed's new posts into an issue. Exits 1 if an issue,
    digest or step was held or stopped by this run, or a digest's feed failed; 130 if
    interrupted (Ctrl-C), after which the next run resumes.

    \b
    Example crontab line:
      * * * * *  cd /srv/newsletter && newsletter run-due >> run-due.log 2>&1
    """
    from newsletter.automations.digest import run_due_digests
    from newsletter.automations.steps import run_due_steps

    try:
        with stop_on_ctrl_c() as stopping:
            # The first Ctrl-C stops the send under way before its next hand-over, with
            # everything recorded, and starts nothing more; it stays queued or pending.
            results = run_due(state.config, say=click.echo, stopping=stopping)
            digests = run_due_digests(state.config, say=click.echo, stopping=stopping)
            steps = run_due_steps(state.config, say=click.echo, stopping=stopping)
    except KeyboardInterrupt:
        # A second Ctrl-C: whatever was out is recorded as such (a batch with the
        # provider: unknown, never sent again on its own); the rest stays pending.
        click.echo("\ninterrupted; run it again to resume", err=True)
        raise click.exceptions.Exit(130) from None
    if stopping.is_set():
        click.echo("interrupted; run it again to resume", err=True)
        raise click.exceptions.Exit(130)
    outcomes = [r.outcome for r in results] + [d.outcome for d in digests]
    outcomes += [step.outcome for step in steps]
    if any(outcome in ("held", "stopped", "failed") for outcome in outcomes):
        raise click.exceptions.Exit(1)
