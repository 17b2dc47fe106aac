"""``newsletter db ...``: the database itself."""

from __future__ import annotations

import click

from newsletter.cli import State, cli, pass_state
from newsletter.store import upgrade_database


@cli.group()
def db() -> None:
    """Manage the database schema."""


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
