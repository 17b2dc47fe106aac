"""``newsletter send`` and ``newsletter status``: delivering an issue, and how it went."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.cli.ctrl_c import stop_on_ctrl_c
from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.safe_text import visible
from newsletter.send.campaign import INTERRUPTED, Progress, SendSummary
from newsletter.send.campaign_rows import Audience
from newsletter.send.plan import SendPlan, plan_send, refuse_bad_pick, refuse_on_errors
from newsletter.send.proofs import send_tests
from newsletter.send.providers import PROVIDERS
from newsletter.send.sending import send_campaign
from newsletter.send.status import campaign_status, unknown_hint
from newsletter.send.subject_plan import SubjectPlan
from newsletter.send.subject_test import LETTERS, letter, why


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
    _show_plan(
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
        _send_tests(config, plan, test_addresses, say, as_json)
        return

    waiting = plan.to_send(retry_unknown=retry_unknown, retry_failed=retry_failed)
    if dry_run and plan.subject_test is not None:
        waiting = plan.to_build()  # a dry run builds the rest's messages too
    if waiting == 0 and not (plan.counts and plan.counts["in_flight"]):
        _nothing_to_send(config, plan, say, as_json)
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
    _finish(config, plan, summary, say, as_json=as_json)
    if dry_run and plan.subject_test is not None:
        say(
            "Subject test: every reader's message was built with the first subject; the "
            "sample is drawn when the campaign starts."
        )


Say = Callable[[str], None]


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
    from newsletter.cli.schedule_commands import requested_time

    if at is not None and (test or dry_run or send_now):
        raise click.UsageError("--at cannot be combined with --test, --dry-run or --now")
    if at is not None and segment is not None:
        raise click.UsageError(
            "--at cannot be combined with --segment; to schedule a send to a segment, put "
            "segment: in the issue's front matter"
        )
    if not test:
        _refuse_steps(state, issue)
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
        item_show_func=_progress_line,
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


def _finish(
    config: Config, plan: SendPlan, summary: SendSummary, say: Say, *, as_json: bool
) -> None:
    """The summary (as JSON too with ``as_json``); a stopped run fails the command, a
    complete one marks its schedule entry sent, and a subject test's rest is queued
    for its time."""
    from newsletter.send.schedule import settle_after_send
    from newsletter.send.schedule_queue import schedule_rest

    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    _show_summary(summary, say)
    if summary.rest_at is not None and not summary.dry_run:
        entry = schedule_rest(config, plan, summary.rest_at)
        say(
            f"Rest:       {summary.totals['pending']} reader(s) get the winner at "
            f"{entry.local_time:%Y-%m-%d %H:%M %Z}: 'newsletter run-due' (cron) or "
            "'newsletter serve' decides and sends it; --pick decides now."
        )
    if summary.stopped == INTERRUPTED:
        # 130 like any program stopped by Ctrl-C (and like run-due), so a wrapper script
        # can tell an interrupted send from a failed one.
        click.echo(f"Error: {INTERRUPTED}", err=True)
        raise click.exceptions.Exit(130)
    if summary.stopped:
        raise SendError(summary.stopped)
    settled = settle_after_send(config, summary)
    if settled is not None:
        say(f"Schedule:  the {settled.state} entry for {settled.slug} is marked sent.")


def _printer(*, err: bool) -> Say:
    def say(message: str) -> None:
        click.echo(message, err=err)

    return say


def _send_tests(
    config: Config, plan: SendPlan, addresses: tuple[str, ...], say: Say, as_json: bool
) -> None:
    # A subject test: a proof of each subject, so each can be read in an inbox.
    test = plan.subject_test
    subjects = list(zip(LETTERS, test.variants, strict=False)) if test else [("", None)]
    results = []
    for variant, subject in subjects:
        deliveries = send_tests(config, plan, addresses, subject=subject)
        results += [
            {"to": address, **({"variant": variant} if variant else {}), **vars(delivery)}
            for address, delivery in zip(addresses, deliveries, strict=True)
        ]
    if as_json:
        click.echo(json.dumps({"test": results}, indent=2))
    for result in results:
        which = f" (subject {result['variant']})" if "variant" in result else ""
        say(f"Test to {result['to']}{which}: {result['status']}" + _because(result["error"]))
    if any(result["status"] != "sent" for result in results):
        raise click.exceptions.Exit(1)


def _because(error: str | None) -> str:
    return f" ({error})" if error else ""


def _show_plan(
    plan: SendPlan,
    say: Say,
    *,
    test_addresses: tuple[str, ...],
    retry_unknown: bool,
    retry_failed: bool = False,
) -> None:
    issue = plan.compiled.issue
    say(f"Issue:      {issue.title} ({issue.path})")
    if plan.subject_test is None:
        say(f"Subject:    {plan.subject}")
    say(f"Provider:   {plan.provider}")
    if plan.switched_from:
        say(f"Switching:  from {plan.switched_from}, which this campaign used so far")
    if test_addresses:
        say(f"Test to:    {', '.join(test_addresses)} (subject prefixed [TEST], not recorded)")
    else:
        if plan.segment is not None:
            fixed = ""
            if plan.campaign is not None:
                fixed = f": its recipients were chosen when campaign {plan.campaign.id} started"
            say(f"Segment:    {visible(plan.segment.label)}{fixed}")
        for line in _audience_lines(plan.audience, plan.segment is not None and not plan.campaign):
            say(line)
        if plan.campaign is not None and plan.counts is not None:
            started = f"{plan.campaign.created_at:%Y-%m-%d %H:%M} UTC"
            counts = _counts_line(plan.counts)
            say(f"Resuming:   campaign {plan.campaign.id} of {started}: {counts}")
        if retry_failed and plan.counts is not None:
            say(f"Re-queue:   {plan.counts['failed']} failed recipient(s) (--retry-failed)")
        if plan.subject_test is not None:
            for line in _subject_test_lines(plan.subject_test):
                say(line)
        say(f"To send:    {plan.to_send(retry_unknown=retry_unknown, retry_failed=retry_failed)}")
    for warning in plan.warnings:
        say(f"Warning:    {warning}")
    for finding in plan.findings:
        say(f"Check:      {finding}")
    if not plan.findings:
        say("Checks:     ok")
    if plan.development_key:
        say(
            "Note:       links are signed with the development key (NEWSLETTER_SECRET_KEY "
            "is not set): fine for the outbox, refused for real mail"
        )


def _subject_test_lines(test: SubjectPlan) -> list[str]:
    """The subjects, the sample per subject and when the rest gets the winner."""
    lines = [
        f"Variant {letter(number)}:  {visible(subject)}"
        for number, subject in enumerate(test.variants, 1)
    ]
    split = ", ".join(f"{letter(n)} {size}" for n, size in enumerate(test.sample, 1))
    drawn = "drawn" if test.test is not None else "drawn at random when it starts"
    lines.append(
        f"Sample:     {sum(test.sample)} reader(s) ({test.sample_percent}%), {drawn}: {split}"
    )
    when = f"{test.rest_at:%Y-%m-%d %H:%M} UTC"
    decided = test.test.winner if test.test is not None else None
    if test.test is not None and decided is not None:
        rest = f"get {why(test.test)}"
    elif test.settings is not None:
        wait = _duration(test.settings.wait)
        rest = f"get the better subject by {test.metric} at {when} (after {wait})"
    else:
        rest = f"get the better subject by {test.metric} at {when}"
    by_hand = "" if decided is not None else "; --pick decides by hand"
    lines.append(f"Rest:       {test.rest} reader(s) {rest}{by_hand}")
    return lines


def _duration(wait: dt.timedelta) -> str:
    minutes = int(wait.total_seconds()) // 60
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _audience_lines(audience: Audience, segmented: bool = False) -> list[str]:
    """Who gets the issue and who does not, each number said once with what it counts;
    ``segmented``: the audience was narrowed by a segment (shown on the line above)."""
    suppressed = "unsubscribed, bounced or complained"
    outside = audience.outside_segment
    if not audience.by_topic:
        if segmented:
            lines = [
                f"Audience:   {audience.recipients} of {audience.recipients + outside} active "
                "subscriber(s): those in the segment"
            ]
        else:
            lines = [
                f"Audience:   {audience.recipients} active subscriber(s): everyone (no topics)"
            ]
        left_out = [f"{outside} active subscriber(s) outside the segment"] if outside else []
        if audience.suppressed:
            left_out.append(f"{audience.suppressed} {suppressed}")
        if left_out:
            lines.append("Left out:   " + "; ".join(left_out))
        return lines
    active = audience.recipients + outside + audience.without_topics
    if len(audience.by_topic) == 1:
        [topic] = audience.by_topic
        chosen, without, them = f"the topic {topic}", f"without the topic {topic}", "it"
    else:
        names = ", ".join(f"{name} ({count})" for name, count in audience.by_topic.items())
        chosen, them = f"any of the topics {names}", "any of them"
        without = f"with none of the topics {', '.join(audience.by_topic)}"
    within = " in the segment" if segmented else ""
    lines = [
        f"Audience:   {audience.recipients} of {active} active subscriber(s): those with "
        f"{chosen}{within}"
    ]
    left_out = []
    if outside:
        left_out.append(f"{outside} active subscriber(s) with {them} outside the segment")
    if audience.without_topics:
        left_out.append(f"{audience.without_topics} active subscriber(s) {without}")
    if audience.suppressed:
        left_out.append(f"{audience.suppressed} with {them} who {suppressed}")
    if left_out:
        lines.append("Left out:   " + "; ".join(left_out))
    return lines


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in counts.items())


def _reactions_line(reactions: dict[str, int], config: Config) -> str:
    # Opens and clicks only where they can be counted: "0 opens" would mislead otherwise.
    tracked = config.provider_tracking or reactions["open"] or reactions["click"]
    shown = reactions if tracked else {"unsubscribed": reactions["unsubscribed"]}
    return ", ".join(_counted(count, kind) for kind, count in shown.items())


def _counted(count: int, kind: str) -> str:
    return f"{count} {kind}" if kind == "unsubscribed" or count == 1 else f"{count} {kind}s"


def _progress_line(progress: Progress | None) -> str:
    if progress is None:
        return ""
    line = f"sent {progress.sent}, failed {progress.failed}, {progress.rate:.0f}/s"
    if progress.skipped:
        line += f", skipped {progress.skipped}"
    return line


def _nothing_to_send(config: Config, plan: SendPlan, say: Say, as_json: bool) -> None:
    from newsletter.send.schedule_queue import queue_rest_if_lost

    counts = plan.counts or {}
    test = plan.subject_test
    if plan.campaign is None:
        message = "Nothing to send: no active subscriber matches."
    elif test is not None and test.pending_rest and not test.rest_due:
        if queue_rest_if_lost(config, plan, test.rest_at):
            say("Schedule:  the rest had no entry (the run that sent the sample died): queued.")
        choices = "|".join(LETTERS[: len(test.variants)])
        message = (
            f"Nothing to send now: the subject test's sample went out; the rest "
            f"({test.pending_rest}) get the winner at {test.rest_at:%Y-%m-%d %H:%M} UTC "
            f"through 'newsletter run-due', or now with --pick {choices}."
        )
    else:
        message = f"Nothing to send: campaign {plan.campaign.id} has no one left to send to."
        if counts.get("unknown"):
            message += (
                f" {counts['unknown']} recipient(s) are unknown (in flight when a run died); "
                "--retry-unknown sends them again, at the risk of a duplicate each."
            )
        if counts.get("failed"):
            message += (
                f" {counts['failed']} recipient(s) failed; once the cause is fixed, "
                "--retry-failed sends them again."
            )
    if as_json:
        click.echo(json.dumps({"nothing_to_send": True, "totals": counts}, indent=2))
    say(message)


def _show_summary(summary: SendSummary, say: Say) -> None:
    rate = (summary.sent + summary.failed) / summary.seconds if summary.seconds else 0.0
    verb = "Would send" if summary.dry_run else "Sent"
    say(
        f"{verb} {summary.sent}, failed {summary.failed}, skipped {summary.skipped}, "
        f"deferred {summary.deferred}, unknown {summary.unknown} "
        f"in {summary.seconds:.1f} s ({rate:.0f}/s)."
    )
    if summary.dry_run:
        say("Dry run: nothing was handed over and nothing was recorded.")
        return
    say(f"Campaign {summary.campaign_id}: {_counts_line(summary.totals)}.")
    if summary.recovered_unknown:
        say(
            f"{summary.recovered_unknown} recipient(s) were in flight when an earlier run "
            f"stopped: they are 'unknown' and were not sent again. "
            f"{unknown_hint(summary.provider)}."
        )
    if summary.unknown:
        say(
            f"{summary.unknown} recipient(s) are unknown: the provider may have their "
            f"message, so it was not sent again. {unknown_hint(summary.provider)}."
        )
    if summary.deferred:
        say(f"{summary.deferred} recipient(s) were deferred: send again later to retry them.")


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the campaigns as JSON.")
@pass_state
def status(state: State, issue: str | None, as_json: bool) -> None:
    """Show each campaign (or ISSUE's): recipients, sent, failed, unknown, pending, errors.

    Also what readers did after it: how many unsubscribed through it, and the opens and
    clicks the provider reported when its tracking is on (sendgrid.tracking,
    postmark.tracking, mailgun.tracking, ses.tracking).

    ISSUE is an issue file or its slug.

    \b
    Examples:
      newsletter status
      newsletter status issues/2026-11-26-stem-cells-in-breast-milk.md
    """
    statuses = campaign_status(state.config, issue)
    if as_json:
        click.echo(json.dumps([item.as_dict() for item in statuses], indent=2, default=str))
        return
    if not statuses:
        click.echo("No campaigns yet." if issue is None else f"No campaign for {issue} yet.")
        return
    for item in statuses:
        campaign = item.campaign
        finished = (
            f"finished {campaign.finished_at:%Y-%m-%d %H:%M} UTC"
            if campaign.finished_at
            else "not finished"
        )
        if item.counts["unknown"]:
            finished = f"not finished: {item.counts['unknown']} unknown"
        click.echo(
            f"{campaign.slug}: campaign {campaign.id} via {campaign.provider}, topics "
            f"{', '.join(campaign.topics) or '(all)'}"
        )
        click.echo(f"  started {campaign.created_at:%Y-%m-%d %H:%M} UTC, {finished}")
        click.echo(f"  {campaign.recipients} recipient(s): {_counts_line(item.counts)}")
        click.echo(f"  after it: {_reactions_line(item.reactions, state.config)}")
        if item.subject_test:
            click.echo(f"  subject test: winner {item.subject_test}")
        if item.handovers:
            handed = ", ".join(f"{name} {count}" for name, count in item.handovers.items())
            click.echo(f"  handed over: {handed}")
        if item.blocked:
            click.echo(
                f"  blocked: {item.blocked} copy(ies) refused for the content or the sender "
                "(policy), not the address; nobody suppressed (docs/deliverability.md)"
            )
        for who, error in item.first_errors:
            click.echo(f"  error: {who}: {error}")
        if campaign.last_error:
            click.echo(f"  stopped: {campaign.last_error}")
        if item.counts["unknown"]:
            click.echo(f"  unknown: {unknown_hint(campaign.provider)}")


def _refuse_steps(state: State, issue: Path) -> None:
    """A step of a sequence goes to each reader when they are due (run-due), never to the
    whole list at once: sending it as an issue would greet everyone again."""
    from newsletter.automations.sequences import step_of
    from newsletter.errors import NewsletterError, SendError

    try:
        step = step_of(state.config, issue)
    except NewsletterError:
        return  # not a readable step: the plan says what is wrong with the file
    if step is not None:
        raise SendError(
            f"{issue}: a step of the sequence {step.automation!r}: 'newsletter run-due' "
            "sends it to each reader when it is due; --test sends a proof, "
            "--retry-unknown sends it again to the readers whose copy is unknown, "
            "--retry-failed to those whose copy failed"
        )
