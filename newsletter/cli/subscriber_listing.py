"""``newsletter subscribers list``, ``export`` and ``count``: the list read out, streamed
(as a table, CSV or JSON), exported with its consent record, or counted; the first and
the last narrowed by ``--segment``. Registered on the group by
:mod:`newsletter.cli.subscriber_commands`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from sqlalchemy import ColumnElement

from newsletter.cli import State, pass_state
from newsletter.cli.subscriber_options import TOPIC, subscriber_store
from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.safe_text import json_visible, visible
from newsletter.segments.sql import choose, segment_condition
from newsletter.store.csv_export import EXPORT_COLUMNS, write_csv

SEGMENT = click.option(
    "--segment",
    metavar="NAME|EXPR",
    help="Only the subscribers of a segment: a name under segments: in newsletter.yaml, "
    "or an expression such as 'attributes.country == \"GB\"' (docs/segments.md).",
)


def _segment_where(state: State, given: str | None) -> ColumnElement[bool] | None:
    if given is None:
        return None
    segment = choose(state.config, given)
    return segment_condition(segment.tree, now=dt.datetime.now(dt.UTC))


@click.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@TOPIC
@SEGMENT
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@pass_state
def list_command(
    state: State,
    status: str | None,
    topics: tuple[str, ...],
    segment: str | None,
    output_format: str,
) -> None:
    """List subscribers (streamed, so any size of list works).

    \b
    Examples:
      newsletter subscribers list --status pending
      newsletter subscribers list --topic events --format csv
      newsletter subscribers list --segment 'clicked within 90 days'
    """
    where = _segment_where(state, segment)
    with subscriber_store(state) as store:
        records = store.records(status=status, topics=topics or None, where=where)
        if output_format == "csv":
            write_csv(records, sys.stdout)
        elif output_format == "json":
            _echo_json_array(records)
        else:
            click.echo(f"{'EMAIL':<40} {'STATUS':<12} {'TOPICS':<26} NAME")
            for record in records:
                topic_list = ",".join(record["topics"])
                # Names came from forms and files: printed, never obeyed by the terminal.
                click.echo(
                    f"{visible(record['email']):<40} {record['status']:<12} {topic_list:<26} "
                    f"{visible(record['name'])}".rstrip()
                )


def _echo_json_array(records: Iterator[dict[str, object]]) -> None:
    """A JSON array written item by item, so a long list is never held in memory."""
    separator = "[\n"
    for record in records:
        click.echo(
            separator + "  " + json_visible(json.dumps(record, ensure_ascii=False)), nl=False
        )
        separator = ",\n"
    click.echo("[]" if separator == "[\n" else "\n]")


@click.command()
@click.argument(
    "file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=Path("-")
)
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status.")
@TOPIC
@pass_state
def export(state: State, file: Path, status: str | None, topics: tuple[str, ...]) -> None:
    """Export subscribers with their consent record as CSV, to FILE or standard output.

    Cells that a spreadsheet would run as a formula (=, +, -, @) are prefixed with
    an apostrophe. The file can be imported again.

    \b
    Examples:
      newsletter subscribers export subscribers-backup.csv
      newsletter subscribers export --status unsubscribed > unsubscribed.csv
    """
    with subscriber_store(state) as store:
        records = store.records(status=status, topics=topics or None)
        if str(file) == "-":
            write_csv(records, sys.stdout)
            return
        with file.open("w", encoding="utf-8", newline="") as out:
            count = write_csv(records, out, EXPORT_COLUMNS)
    click.echo(f"Exported {count} subscribers to {file}")


@click.command()
@SEGMENT
@pass_state
def count(state: State, segment: str | None) -> None:
    """Count subscribers by status, and active subscribers by topic (of a segment).

    \b
    Examples:
      newsletter subscribers count
      newsletter subscribers count --segment uk
    """
    where = _segment_where(state, segment)
    with subscriber_store(state) as store:
        counts = store.counts(where)
    if segment is not None:
        click.echo(f"segment: {visible(choose(state.config, segment).label)}\n")
    click.echo("status        subscribers")
    for status, number in counts["status"].items():
        click.echo(f"{status:<13} {number:>11}")
    click.echo(f"{'total':<13} {sum(counts['status'].values()):>11}")
    if counts["topics"]:
        click.echo("\ntopic         active")
        for topic, number in counts["topics"].items():
            click.echo(f"{topic:<13} {number:>6}")
