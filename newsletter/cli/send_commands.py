"""``newsletter send``: delivering an issue (now, as test copies, or scheduled)."""

from __future__ import annotations

import datetime as dt
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.cli.ctrl_c import stop_on_ctrl_c
from newsletter.cli.send_plan_text import Say, show_plan
from newsletter.cli.send_results import finish, nothing_to_send, progress_line, send_test_copies
from newsletter.config import Config
from newsletter.send.plan import SendPlan, plan_send, refuse_bad_pick, refuse_on_errors
from newsletter.send.providers import PROVIDERS
from newsletter.send.run_summary import Progress, SendSummary
from newsletter.send.sending import send_campaign


@cli.command()
@click.argument("issue", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="TOPIC",
    help="Send to subscribers of TOPIC (repeatable). Default: the issue's topics, or "
    "every active subscriber when it has none.",
)
@click.option(
    "--provider",
    type=click.Choice(sorted(PROVIDERS)),
    help="Where the mail goes. Default: 'provider' in newsletter.yaml.",
)
@click.option(
    "--test",
    "test_addresses",
    multiple=True,
    metavar="ADDRESS",
    help="Send only to ADDRESS (repeatable), subject prefixed [TEST], recorded nowhere.",
)
@click.option(
    "--segment",
    metavar="NAME|EXPR",
    help="Only the readers of a segment among the topics' readers: a name under segments: "
    "in newsletter.yaml or an expression (docs/segments.md). Default: the issue's segment:.",
)
@click.option("--dry-run", is_flag=True, help="Do everything except handing the mail over.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help="At most N messages per second (default: sending.rate in newsletter.yaml).",
)
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Also resend recipients whose batch was in flight when an earlier run died "
    "(each may get the issue twice). For a sequence's step: send it again to the readers "
    "whose copy is unknown.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also resend recipients the provider refused for good in earlier runs (after "
    "fixing the cause); who has bounced or left since is still left out. For a sequence's "
    "step: send it again to the readers whose copy failed.",
)
@click.option(
    "--switch-provider",
    is_flag=True,
    help="Resume a campaign through another provider than the one it started with.",
)
@click.option(
    "--at",
    "at",
    metavar="WHEN",
    help="Schedule instead of sending now: '2026-12-01 09:00' (in the configured timezone), "
    "ISO 8601 with an offset, or 'tomorrow 9am'. The issue's send_at: does the same.",
)
@click.option("--tz", "zone", metavar="ZONE", help="Time zone of --at (default: timezone).")
@click.option("--now", "send_now", is_flag=True, help="Send now even if the issue has send_at.")
@click.option(
    "--pick",
    metavar="A|B|C|D",
    help="Decide a subject test by hand once its sample went out: the rest get this "
    "subject variant now (docs/subject-tests.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def send(
    state: State,
    issue: Path,
    topics: tuple[str, ...],
    provider: str | None,
    test_addresses: tuple[str, ...],
    segment: str | None,
    dry_run: bool,
    rate: float | None,
    retry_unknown: bool,
    retry_failed: bool,
    switch_provider: bool,
    at: str | None,
    zone: str | None,
    send_now: bool,
    pick: str | None,
    as_json: bool,
    yes: bool,
) -> None:
    """Send ISSUE to its subscribers; sending it again resumes where it stopped.

    Shows the plan, runs the pre-send checks (refusing on errors), asks for
    confirmation, then sends with a progress bar. Nobody gets the issue twice: an
    interrupted run (Ctrl-C: exit status 130) is resumed by running the same command
    again.

    \b
    Examples:
      newsletter send issues/2026-11-26-stem-cells.md --test me@example.org
      newsletter send issues/2026-11-26-stem-cells.md --dry-run
      newsletter send issues/2026-11-26-stem-cells.md --provider sendgrid --yes
      newsletter send issues/2026-11-26-stem-cells.md --segment uk
      newsletter send issues/2026-11-26-stem-cells.md --at "2026-12-01 09:00"
      newsletter send issues/2026-11-26-stem-cells.md --pick B
    """
    config = state.config
    # Imported here: scheduling is one branch of this command (see schedule_commands).
    from newsletter.cli.schedule_commands import schedule_planned

    if (retry_unknown or retry_failed) and not (test_addresses or dry_run):
        from newsletter.cli.automation_commands import retry_step

        if retry_step(
            state, issue, retry_unknown=retry_unknown, retry_failed=retry_failed, yes=yes
        ):
            return
    when = _when_to_send(
        state,
        issue,
        at=at,
        zone=zone,
        segment=segment,
        test=bool(test_addresses),
        dry_run=dry_run,
        send_now=send_now or pick is not None,
    )
    if pick is not None and (test_addresses or dry_run or at is not None):
        raise click.UsageError("--pick cannot be combined with --test, --dry-run or --at")
    # With --json, stdout holds only the JSON: everything for people goes to stderr.
    say = _printer(err=as_json)
    plan = plan_send(
        config,
        issue,
        provider=provider,
        topics=topics or None,
        test=bool(test_addresses),
        switch_provider=switch_provider,
        segment=segment,
    )
    if pick is not None:
        plan = refuse_bad_pick(plan, pick)
    show_plan(
        plan,
        say,
        test_addresses=test_addresses,
        retry_unknown=retry_unknown,
        retry_failed=retry_failed,
    )
    refuse_on_errors(plan)  # before asking anything
    if when is not None:
        schedule_planned(config, plan, when, say, yes=yes, as_json=as_json)
        return
    if test_addresses:
        send_test_copies(config, plan, test_addresses, say, as_json)
        return

    waiting = plan.to_send(retry_unknown=retry_unknown, retry_failed=retry_failed)
    if dry_run and plan.subject_test is not None:
        waiting = plan.to_build()  # a dry run builds the rest's messages too
    if waiting == 0 and not (plan.counts and plan.counts["in_flight"]):
        nothing_to_send(config, plan, say, as_json)
        return
    if not dry_run and not yes and waiting:
        _confirm(plan, waiting, err=as_json)
    summary = _send_with_progress(
        config,
        plan,
        waiting,
        rate=rate,
        retry_unknown=retry_unknown,
        retry_failed=retry_failed,
        dry_run=dry_run,
        err=as_json,
        pick=pick,
    )
    finish(config, plan, summary, say, as_json=as_json)
    if dry_run and plan.subject_test is not None:
        say(
            "Subject test: every reader's message was built with the first subject; the "
            "sample is drawn when the campaign starts."
        )


def _when_to_send(
    state: State,
    issue: Path,
    *,
    at: str | None,
    zone: str | None,
    segment: str | None,
    test: bool,
    dry_run: bool,
    send_now: bool,
) -> tuple[dt.datetime, str] | None:
    """The options that cannot go together refused; when to schedule the send (--at, or
    the issue's send_at:, as UTC and the zone's name), or None to send now."""
    from newsletter.automations.sequences import refuse_step_as_issue
    from newsletter.cli.schedule_commands import requested_time

    if at is not None and (test or dry_run or send_now):
        raise click.UsageError("--at cannot be combined with --test, --dry-run or --now")
    if at is not None and segment is not None:
        raise click.UsageError(
            "--at cannot be combined with --segment; to schedule a send to a segment, put "
            "segment: in the issue's front matter"
        )
    if not test:
        refuse_step_as_issue(state.config, issue)
    # The issue's own send_at: counts unless this is a test, a dry run or --now.
    use_front_matter = not (test or dry_run or send_now)
    return requested_time(state.config, issue, at=at, zone=zone, front_matter=use_front_matter)


def _confirm(plan: SendPlan, waiting: int, *, err: bool) -> None:
    if plan.warnings:
        # Each warning is a reason to stop; going on is not the default then.
        question = f"{len(plan.warnings)} warning(s) above. Send to {waiting} anyway?"
    else:
        question = f"Send to {waiting} recipient(s) through {plan.provider}?"
    click.confirm(question, abort=True, err=err)


def _send_with_progress(
    config: Config,
    plan: SendPlan,
    waiting: int,
    *,
    rate: float | None,
    retry_unknown: bool,
    retry_failed: bool,
    dry_run: bool,
    err: bool,
    pick: str | None = None,
) -> SendSummary:
    """The run, behind a progress bar (on stderr with ``err``); the first Ctrl-C stops it
    between batches."""
    with click.progressbar(
        length=waiting,
        label="Dry run" if dry_run else "Sending",
        show_eta=True,
        item_show_func=progress_line,
        file=sys.stderr if err else None,
    ) as bar:

        def on_progress(progress: Progress) -> None:
            bar.update(progress.done - bar.pos, progress)

        def on_notice(message: str) -> None:
            # On its own line, to stderr: a retry's wait is news, not a result.
            click.echo(f"\n{message}", err=True)

        with stop_on_ctrl_c() if not dry_run else nullcontext(None) as stopping:
            return send_campaign(
                config,
                plan,
                rate=rate,
                retry_unknown=retry_unknown,
                retry_failed=retry_failed,
                dry_run=dry_run,
                progress=on_progress,
                notice=on_notice,
                stopping=stopping,
                pick=pick,
            )


def _printer(*, err: bool) -> Say:
    def say(message: str) -> None:
        click.echo(message, err=err)

    return say
