"""What ``newsletter subscribers import`` prints: the mapping it used, then the outcome."""

from __future__ import annotations

import click
import yaml

from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.store.csv_import import ImportSummary
from newsletter.store.importers.topics import suggested_topics

OUTCOMES = ("added", "updated", "unchanged", "suppressed", "rejected")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
# What a format's field is called in the report, where its name is not plain English.
FIELD_LABELS = {
    "optin_time": "opt-in time",
    "optin_ip": "opt-in IP",
    "confirm_time": "confirmation time",
    "confirm_ip": "confirmation IP",
    "unsub_time": "unsubscribe time",
    "unsub_reason": "unsubscribe reason",
    "unsub_reason_other": "other reason",
    "unsub_campaign": "unsubscribe campaign",
    "clean_time": "cleaned time",
    "clean_campaign": "cleaned campaign",
    "leid": "Mailchimp LEID",
    "euid": "Mailchimp EUID",
    "subscribed_ip": "subscribed IP",
    "confirmed_ip": "confirmed IP",
    "email_disabled": "opted out",
    "subscribed": "opted in",
}


def print_summary(summary: ImportSummary) -> None:
    delimiter = DELIMITER_NAMES.get(summary.delimiter, repr(summary.delimiter))
    columns = ", ".join(f"{_label(field)} from {name!r}" for field, name in summary.columns.items())
    if summary.format_name == "csv":
        click.echo(f"Read {summary.path.name} ({delimiter}-delimited): {columns}")
    else:
        kind = f" ({summary.kind})" if summary.kind else ""
        click.echo(
            f"Read a {summary.format_title}{kind}: {summary.path.name} ({delimiter}-delimited)"
        )
        click.echo(f"Columns: {columns}")
    if summary.attribute_columns:
        kept = ", ".join(repr(name) for name in summary.attribute_columns)
        click.echo(f"Kept as attributes: {kept} (--ignore-other-columns leaves them out)")
    if summary.group_like_columns:
        _print_group_columns(summary.group_like_columns)
    if summary.ignored_columns:
        ignored = ", ".join(repr(name) for name in summary.ignored_columns)
        click.echo(f"Ignored columns: {ignored}")
    for rejected in summary.rejected:
        click.echo(str(rejected))
    more = summary.invalid - len(summary.rejected)
    if more > 0:
        where = f"; all are in {summary.rejects_path}" if summary.rejects_path else ""
        click.echo(f"... and {more} more rejected rows{where}")
    if summary.unknown_topics:
        _print_unknown_topics(summary)
    if summary.dry_run:
        _print_by_status(summary)
    prefix = "Dry run, nothing saved: would have " if summary.dry_run else ""
    click.echo(
        f"{prefix}added {summary.added}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, suppressed {summary.suppressed} (left alone), "
        f"invalid {summary.invalid}"
    )
    if summary.rejects_path:
        click.echo(f"Rejected rows written to {summary.rejects_path}; fix them and import it.")


def print_total(summaries: list[ImportSummary]) -> None:
    totals = {
        outcome: sum(getattr(summary, outcome) for summary in summaries)
        for outcome in ("added", "updated", "unchanged", "suppressed", "invalid")
    }
    click.echo(
        f"All {len(summaries)} files: added {totals['added']}, updated {totals['updated']}, "
        f"unchanged {totals['unchanged']}, suppressed {totals['suppressed']} (left alone), "
        f"invalid {totals['invalid']}"
    )


def _print_unknown_topics(summary: ImportSummary) -> None:
    counts = ", ".join(f"{topic} ({n})" for topic, n in summary.unknown_topics.most_common())
    click.echo(f"Topics newsletter.yaml does not define: {counts}.")
    if summary.unmapped_tags:
        click.echo(
            "Those rows were imported without them. To keep them as topics, add them under "
            "'topics:' in newsletter.yaml, or map them to a topic with --map-topic "
            '"VALUE=topic" (or imports.topic_map), and import again:'
        )
    else:
        click.echo("To create one, add it under 'topics:' in newsletter.yaml and import again:")
    for line in suggested_topics(summary.unknown_topics).splitlines():
        click.echo(f"  {line}")


def _print_by_status(summary: ImportSummary) -> None:
    """The dry run's table: per status in the file, what would happen to its rows."""
    statuses = [s for s in (*SUBSCRIBER_STATUSES, "unreadable") if _row_count(summary, s)]
    if not statuses:
        return
    click.echo("By status in the file:")
    click.echo(f"  {'status':<13}" + "".join(f"{outcome:>11}" for outcome in OUTCOMES))
    for status in statuses:
        counts = "".join(f"{summary.by_status[status, outcome]:>11}" for outcome in OUTCOMES)
        click.echo(f"  {status:<13}{counts}")


def _row_count(summary: ImportSummary, status: str) -> int:
    return sum(summary.by_status[status, outcome] for outcome in OUTCOMES)


def _label(field: str) -> str:
    if field.startswith("group:"):
        return "groups"
    return FIELD_LABELS.get(field, field.replace("_", " "))


def _print_group_columns(columns: list[str]) -> None:
    """How to make an interest-group column that was not recognised into topics."""
    named = ", ".join(repr(name) for name in columns)
    if len(columns) == 1:
        what = "looks like an interest-group column: to make its groups topics, add it"
    else:
        what = "look like interest-group columns: to make their groups topics, add them"
    click.echo(f"{named} {what} to newsletter.yaml and import again:")
    snippet = yaml.safe_dump(
        {"imports": {"group_columns": columns}}, allow_unicode=True, sort_keys=False
    )
    for line in snippet.splitlines():
        click.echo(f"  {line}")
