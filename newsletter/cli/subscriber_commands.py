"""``newsletter subscribers ...``: keeping the list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.cli.import_report import print_summary, print_total
from newsletter.cli.subscriber_listing import count, export, list_command
from newsletter.cli.subscriber_options import TOPIC, subscriber_store
from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.safe_text import json_visible
from newsletter.store.csv_import import ImportOptions
from newsletter.store.importers import FORMAT_NAMES
from newsletter.store.importers.topics import parse_mapping
from newsletter.store.imports import import_file


@cli.group()
def subscribers() -> None:
    """Keep the subscriber list: import, add, remove, forget, show, list, export, count.

    The list lives in the database named by database_url in newsletter.yaml (or
    NEWSLETTER_DATABASE_URL): a SQLite file beside the config by default.
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--from",
    "source_format",
    type=click.Choice(["auto", *FORMAT_NAMES]),
    default="auto",
    show_default=True,
    help="The service FILE was exported from; auto recognises it by its header.",
)
@TOPIC
@click.option(
    "--map-topic",
    "map_topics",
    multiple=True,
    metavar='"VALUE=TOPIC"',
    help="Import the export's tag, label or group VALUE as topic TOPIC (repeatable; "
    "an empty TOPIC drops VALUE). For this import only, on top of imports.topic_map "
    "in newsletter.yaml (which it overrides for VALUE); the file is not changed.",
)
@click.option(
    "--status",
    type=click.Choice(SUBSCRIBER_STATUSES),
    default="active",
    show_default=True,
    help="Status of rows without one of their own (e.g. unsubscribed for a list of "
    "opt-outs, bounced for a list of bounces).",
)
@click.option("--dry-run", is_flag=True, help="Read and check everything, save nothing.")
@click.option(
    "--welcome",
    is_flag=True,
    help="The rows added as active enter the automations (their welcome mail and "
    "sequences), as if they had just signed up. Without it an import greets nobody.",
)
@click.option(
    "--ignore-other-columns",
    is_flag=True,
    help="Leave out the columns the import does not read (by default each is kept as an "
    "attribute of its row's subscriber, under the column's name, for segments).",
)
@click.option(
    "--encoding", default="utf-8", show_default=True, help="Text encoding of FILE (e.g. cp1252)."
)
@click.option(
    "--delimiter",
    metavar="CHAR",
    help="Column delimiter; by default comma, semicolon or tab, whichever the header uses.",
)
@pass_state
def import_command(
    state: State,
    file: Path,
    source_format: str,
    topics: tuple[str, ...],
    map_topics: tuple[str, ...],
    status: str,
    dry_run: bool,
    welcome: bool,
    ignore_other_columns: bool,
    encoding: str,
    delimiter: str | None,
) -> None:
    """Import subscribers from a CSV FILE or another service's export (CSV or ZIP).

    Recognises Mailchimp (the subscribed, unsubscribed and cleaned members CSVs or
    the audience ZIP), Substack, Buttondown, Ghost, Kit, listmonk, beehiiv and
    MailerLite exports, and
    plain CSVs with the columns email (required), name or first name + last name,
    topics, status, subscribed_at, source; any other column is kept as an attribute
    (--ignore-other-columns leaves it out). Every opt-out, bounce and complaint
    arrives suppressed; a row whose status is not understood is rejected, never
    imported as active. Rejected rows are listed with their line numbers and written
    to FILE.rejects.csv. Unsubscribed, bounced, complained and erased addresses are
    never reactivated; re-running the same import changes nothing.

    \b
    Examples:
      newsletter subscribers import subscribers.csv --dry-run
      newsletter subscribers import signups.csv --topic events --status pending
      newsletter subscribers import audience.zip --map-topic "Food & Drink=recipes"
      newsletter subscribers import opt-outs.csv --status unsubscribed
    """
    if delimiter is not None:
        delimiter = "\t" if delimiter.lower() in ("tab", "\\t") else delimiter
        if len(delimiter) != 1:
            raise click.BadParameter("must be one character, or 'tab'", param_hint="--delimiter")
    settings = state.config.imports
    options = ImportOptions(
        source_format=source_format,
        topics=topics,
        status=status,
        topic_map={**settings.topic_map, **parse_mapping(map_topics)},
        group_columns=settings.group_columns,
        encoding=encoding,
        delimiter=delimiter,
        welcome=welcome,
        ignore_other_columns=ignore_other_columns,
    )
    with (
        subscriber_store(state) as store,
        click.progressbar(
            length=file.stat().st_size,
            label=f"Importing {file.name}",
            file=sys.stderr,  # the summary on stdout stays clean for scripts
            hidden=not sys.stderr.isatty(),
        ) as bar,
    ):
        summaries = import_file(
            store,
            file,
            options,
            dry_run=dry_run,
            progress=lambda done, _total: bar.update(max(0, done - bar.pos)),
        )
    for summary in summaries:
        print_summary(summary)
    if len(summaries) > 1:
        print_total(summaries)


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@TOPIC
@click.option(
    "--status",
    type=click.Choice(["active", "pending"]),
    default="active",
    show_default=True,
    help="pending: waits for a confirmation through the web app.",
)
@pass_state
def add(state: State, email: str, name: str, topics: tuple[str, ...], status: str) -> None:
    """Add EMAIL, or add the given name and topics to an existing subscriber.

    \b
    Example:
      newsletter subscribers add ann@example.org --name "Ann Lee" --topic research
    """
    with subscriber_store(state) as store:
        result = store.add_or_merge(email, name=name, topics=topics, status=status, source="cli")
    subscriber = result.subscriber
    topic_list = ", ".join(subscriber.topics) or "none"
    if result.outcome == "added":
        click.echo(f"Added {subscriber.email} ({subscriber.status}; topics: {topic_list})")
    elif result.outcome == "updated":
        click.echo(f"Updated {subscriber.email} ({subscriber.status}; topics: {topic_list})")
    else:
        click.echo(f"{subscriber.email} is already {subscriber.status}; nothing to change")


@subscribers.command()
@click.argument("email")
@click.option("--reason", default="", help="Why, for the record (e.g. 'asked by phone').")
@pass_state
def remove(state: State, email: str, reason: str) -> None:
    """Unsubscribe EMAIL; the address stays on file so it is never mailed again.

    \b
    Example:
      newsletter subscribers remove ann@example.org --reason "asked by email"
    """
    with subscriber_store(state) as store:
        subscriber = store.find(email)
        if subscriber is None:
            raise click.ClickException(f"no subscriber with address {email}")
        if store.unsubscribe(subscriber.id, source="cli", reason=reason):
            click.echo(f"Unsubscribed {subscriber.email}")
        else:
            click.echo(f"{subscriber.email} is already {subscriber.status}; nothing to change")


@subscribers.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def forget(state: State, email: str, yes: bool) -> None:
    """Erase EMAIL (a GDPR erasure request): delete every record of the person.

    Only a SHA-256 hash of the address is kept, on the suppression list, so that
    it is never mailed, added or imported again; only the person can come back, by
    signing up on the web form and confirming. This cannot be undone.

    \b
    Example:
      newsletter subscribers forget ann@example.org --yes
    """
    if not yes:
        click.confirm(f"Erase everything stored about {email}? This cannot be undone", abort=True)
    with subscriber_store(state) as store:
        erased = store.forget(email)
    if erased:
        click.echo(f"Erased {email}; only a hash of the address is kept, so it is never mailed")
    else:
        click.echo(f"No subscriber {email}; its hash is now on the suppression list all the same")


@subscribers.command()
@click.argument("email")
@pass_state
def show(state: State, email: str) -> None:
    """Print everything stored about EMAIL as JSON (a data access request).

    \b
    Example:
      newsletter subscribers show ann@example.org > ann.json
    """
    with subscriber_store(state) as store:
        record = store.describe(email)
    click.echo(json_visible(json.dumps(record, indent=2, ensure_ascii=False)))


# Reading the list out: newsletter.cli.subscriber_listing.
for command in (list_command, export, count):
    subscribers.add_command(command)
