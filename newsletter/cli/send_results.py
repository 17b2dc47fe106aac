"""What ``newsletter send`` says after the run (or instead of one): the summary, nothing to
send, the test copies; and what a finished run leaves to the schedule.
"""

from __future__ import annotations

import json

import click

from newsletter.cli.send_plan_text import Say, counts_line
from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.send.plan import SendPlan
from newsletter.send.proofs import send_tests
from newsletter.send.run_summary import Progress, SendSummary
from newsletter.send.status import unknown_hint
from newsletter.send.stop_request import signalled
from newsletter.send.subject_test import LETTERS


def finish(
    config: Config, plan: SendPlan, summary: SendSummary, say: Say, *, as_json: bool
) -> None:
    """The summary (as JSON too with ``as_json``); a stopped run fails the command, a
    complete one marks its schedule entry sent, and a subject test's rest is queued
    for its time."""
    from newsletter.send.schedule import settle_after_send
    from newsletter.send.schedule_queue import queue_rest

    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    show_summary(summary, say)
    entry = queue_rest(config, plan, summary)
    if entry is not None:
        say(
            f"Rest:       {summary.rest_pending} reader(s) get the winner at "
            f"{entry.local_time:%Y-%m-%d %H:%M %Z}: 'newsletter run-due' (cron) or "
            "'newsletter serve' decides and sends it; --pick decides now."
        )
    if signalled(summary.stopped):
        # 130 like any program stopped by Ctrl-C (and like run-due), so a wrapper script
        # can tell an interrupted send from a failed one.
        click.echo(f"Error: {summary.stopped}", err=True)
        raise click.exceptions.Exit(130)
    if summary.stopped:
        raise SendError(summary.stopped)
    settled = settle_after_send(config, summary)
    if settled is not None:
        say(f"Schedule:  the {settled.state} entry for {settled.slug} is marked sent.")


def send_test_copies(
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


def progress_line(progress: Progress | None) -> str:
    if progress is None:
        return ""
    line = f"sent {progress.sent}, failed {progress.failed}, {progress.rate:.0f}/s"
    if progress.skipped:
        line += f", skipped {progress.skipped}"
    return line


def nothing_to_send(config: Config, plan: SendPlan, say: Say, as_json: bool) -> None:
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


def show_summary(summary: SendSummary, say: Say) -> None:
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
    say(f"Campaign {summary.campaign_id}: {counts_line(summary.totals)}.")
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
