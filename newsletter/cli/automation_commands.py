"""``newsletter automations``: the sequences, their steps, who is in them, what is due."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state


@cli.command("automations")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def automations_command(state: State, as_json: bool) -> None:
    """List each sequence: its steps, who is in it, who is due now, what was sent.

    Each digest: its feed, when it is next due, its last issue and, if the last try
    failed, why.

    'In it': active readers who entered (confirmed, added, or imported with --welcome)
    and have a step still ahead of them. 'Due now': readers the next 'newsletter
    run-due' sends the step to. Nothing is sent or changed. See docs/automations.md.

    \b
    Example:
      newsletter automations
    """
    from newsletter.automations.overview import digest_overview, overview

    sequences = overview(state.config)
    digests = digest_overview(state.config)
    if as_json:
        shown = {
            "sequences": [sequence.as_dict() for sequence in sequences],
            "digests": [digest.as_dict() for digest in digests],
        }
        click.echo(json.dumps(shown, indent=2))
        return
    if not sequences and not digests:
        click.echo("No automations: add one under 'automations:' in newsletter.yaml.")
        return
    for digest in digests:
        how = "held for approval" if digest.approve else "sent at once"
        click.echo(
            f"{digest.name} (digest of {digest.feed}, {digest.every}, {how}): next "
            f"{digest.next_at:%Y-%m-%d %H:%M %Z}; last digest: {digest.last_digest or 'none yet'}"
        )
        if digest.last_error:
            click.echo(f"  the last try failed: {digest.last_error}")
    root = state.config.root
    for sequence in sequences:
        topics = ", ".join(sequence.topics) or "everyone"
        folder = _relative(sequence.path, root)
        click.echo(
            f"{sequence.name} ({folder}, {topics}): {sequence.in_it} in it, "
            f"{sequence.entered} entered"
        )
        rows = [("  STEP", "AFTER", "DUE NOW", "WAITING", "SENT", "FAILED", "UNKNOWN", "SKIPPED")]
        for step in sequence.steps:
            counts = step.states
            rows.append(
                (
                    f"  {step.step}",
                    step.after,
                    str(step.due_now),
                    str(step.waiting),
                    str(step.sent),
                    str(counts["failed"]),
                    str(counts["unknown"] + counts["in_flight"]),
                    str(counts["skipped"]),
                )
            )
        if not sequence.steps:
            click.echo("  no steps yet: newsletter new --automation NAME TITLE")
            continue
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            click.echo(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def retry_step(
    state: State, issue: Path, *, retry_unknown: bool, retry_failed: bool, yes: bool
) -> bool:
    """``send STEP --retry-unknown`` / ``--retry-failed``: the step sent again to the
    readers whose copy is unknown (or failed), after asking (unless ``yes``); False when
    ``issue`` is not a step."""
    from newsletter.automations.retry import Retry, copies_to_retry, retry_copies
    from newsletter.automations.sequences import step_of
    from newsletter.errors import NewsletterError

    try:
        step = step_of(state.config, issue)
    except NewsletterError:
        return False  # not a readable step: the plan says what is wrong with the file
    if step is None:
        return False
    name = f"{step.automation}/{step.key}"
    retry = Retry(unknown=retry_unknown, failed=retry_failed)
    whose = {
        (True, False): "is unknown",
        (False, True): "failed",
        (True, True): "is unknown or failed",
    }[retry_unknown, retry_failed]
    count = sum(copies_to_retry(state.config, step, retry).values())
    if not count:
        click.echo(f"{name}: no reader's copy {whose}; nothing to send again.")
        return True
    if not yes:
        risk = " (each may get it twice)" if retry_unknown else ""
        click.confirm(
            f"{name}: send it again to {count} reader(s) whose copy {whose}{risk}?",
            abort=True,
        )
    results = retry_copies(state.config, step, retry, say=click.echo)
    if any(result.outcome != "sent" for result in results):
        raise click.exceptions.Exit(1)
    return True
