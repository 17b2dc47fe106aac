"""``newsletter report``: the editorial view of how issues did and how the list grows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state


@cli.command()
@click.argument("issue", required=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
    help="table for the terminal, json or csv for other tools, html for a page with charts.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output (with --open: default report.html).",
)
@click.option("--open", "open_it", is_flag=True, help="Open the HTML report in a browser.")
@pass_state
def report(
    state: State, issue: str | None, output_format: str, out: Path | None, open_it: bool
) -> None:
    """How each issue did, and the list over time.

    Per issue: recipients, handed over, failed, unknown, bounced (hard/soft),
    complained, unsubscribed through it (and any way within 7 days after it), and with
    tracking on, opens, clicks and the top links. Then the list by week (active,
    pending, unsubscribed, bounced, complained, joined) and subscribers by source.
    'newsletter status' stays the quick operational view.

    ISSUE is an issue file or its slug; without it, every issue.

    \b
    Examples:
      newsletter report
      newsletter report issues/2026-11-26-stem-cells.md
      newsletter report --format html --open
      newsletter report --format csv --out issues.csv
    """
    # Imported here: the report's queries and templates are not needed by other commands.
    from newsletter.reports import make_report
    from newsletter.reports.formats import as_csv, as_json, as_table
    from newsletter.reports.html import as_html

    config = state.config
    if open_it:
        if output_format != "html":
            raise click.UsageError("--open needs --format html")
        out = out or Path("report.html")
    made = make_report(config, issue)
    if output_format == "html":
        text = as_html(
            made,
            title=f"{config.name}: report",
            generated=dt.datetime.now(dt.UTC),
            language=config.language,
        )
    elif output_format == "table":
        text = as_table(made, language=config.language)
    else:  # machine formats: ISO 8601 dates, plain numbers, whatever the language
        text = {"json": as_json, "csv": as_csv}[output_format](made)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {out}", err=True)
    if open_it:
        click.launch(str(out.resolve()))
