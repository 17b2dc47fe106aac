"""``newsletter db ...``: the database itself."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.store import upgrade_database


@cli.group()
def db() -> None:
    """The database: upgrade its schema, back it up, restore it, copy it elsewhere."""


@db.command()
@pass_state
def upgrade(state: State) -> None:
    """Create the database or bring its schema up to date.

    Every command does this on first use; run it explicitly when deploying a new
    version, before starting the web app.

    \b
    Example:
      NEWSLETTER_DATABASE_URL=postgresql+psycopg://news@db/news newsletter db upgrade
    """
    applied, version = upgrade_database(state.config)
    for migration in applied:
        click.echo(f"Applied {migration.version}: {migration.description}")
    if not applied:
        click.echo(f"The database is up to date (schema version {version})")


@db.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@pass_state
def backup(state: State, file: Path) -> None:
    """Write the whole database to FILE: every table, one consistent moment.

    Safe while the web app and 'newsletter send' run: it reads one snapshot and
    writes nothing to the database. The file (compressed) restores into SQLite or
    PostgreSQL, whichever it came from; FILE is replaced only once the new backup is
    complete. Keep newsletter.yaml, the secret key and the issues folder too (see
    docs/operations.md).

    \b
    Example:
      newsletter db backup backups/newsletter-$(date +%F).backup
    """
    from newsletter.ops.backup import backup_database

    done = backup_database(state.config, file)
    rows = sum(done.header.rows.values())
    click.echo(
        f"Backed up {rows:,} rows in {len(done.header.tables)} tables "
        f"(schema version {done.header.schema_version}) to {file} ({_size(done.size)})"
    )
    for table in ("subscribers", "suppressions", "campaigns", "ledger"):
        if table in done.header.rows:
            click.echo(f"  {table:<13} {done.header.rows[table]:>12,}")


@db.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace everything in a database that is not empty.")
@pass_state
def restore(state: State, file: Path, force: bool) -> None:
    """Load a backup FILE into the database (an empty one, unless --force).

    All or nothing, in one transaction: the rows are checked against the backup's
    counts and checksum before anything is committed, and a backup from an older
    version is migrated forward. Stop the web app and timers first. Into another
    database than newsletter.yaml names: set NEWSLETTER_DATABASE_URL.

    \b
    Example:
      NEWSLETTER_DATABASE_URL=sqlite:///drill.db newsletter db restore last.backup
    """
    from newsletter.ops.backup import restore_database, shown_url

    loaded = restore_database(state.config, file, force=force)
    migrated = (
        f", migrated from schema version {loaded.schema_version} to {loaded.migrated_to}"
        if loaded.migrated_to != loaded.schema_version
        else f" (schema version {loaded.migrated_to})"
    )
    click.echo(
        f"Restored {sum(loaded.rows.values()):,} rows in {len(loaded.rows)} tables from "
        f"{file} into {shown_url(state.config.database)}{migrated}"
    )


@db.command()
@click.option(
    "--to",
    "to_url",
    required=True,
    metavar="URL",
    help="The database to copy into, e.g. postgresql+psycopg://news@localhost/news.",
)
@click.option("--force", is_flag=True, help="Replace everything in a target that is not empty.")
@pass_state
def copy(state: State, to_url: str, force: bool) -> None:
    """Copy the whole database into another one (an empty one, unless --force).

    The way from SQLite to PostgreSQL: one consistent snapshot of every table, loaded
    in one transaction, ids never handed out again. Then point the newsletter at the
    new database (the command prints the one setting to change). A password is better
    kept out of URL and shell history: PostgreSQL reads PGPASSWORD or ~/.pgpass.

    \b
    Example:
      newsletter db copy --to postgresql+psycopg://news@localhost/news
    """
    from newsletter.ops.copy import copy_database

    copied = copy_database(state.config, to_url, force=force)
    loaded = copied.loaded
    click.echo(
        f"Copied {sum(loaded.rows.values()):,} rows in {len(loaded.rows)} tables to "
        f"{copied.target} (schema version {loaded.migrated_to})."
    )
    click.echo("Now point the newsletter at it; the one setting to change:")
    if copied.setting == "database_url":
        click.echo(f"  database_url: {copied.target}   (in newsletter.yaml)")
        click.echo("or set NEWSLETTER_DATABASE_URL (where a password belongs: the environment).")
    else:
        click.echo(f"  NEWSLETTER_DATABASE_URL={copied.target}   (where it is set now)")


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    raise AssertionError("unreachable")
