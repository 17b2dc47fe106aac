"""``newsletter deploy ...``: files that run the newsletter on a server."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.errors import ConfigError


@cli.group()
def deploy() -> None:
    """Write the files that run the newsletter on a server, for review."""


@deploy.command()
@click.option(
    "--dir",
    "folder",
    required=True,
    metavar="PATH",
    help="The newsletter folder on the server (newsletter.yaml, issues/, backups/).",
)
@click.option("--user", required=True, help="The system user the services run as.")
@click.option("--domain", help="The site's host name; Caddy gets its TLS certificate.")
@click.option(
    "--venv", metavar="PATH", help="The virtualenv with newsletter installed [default: DIR/.venv]."
)
@click.option(
    "--env-file",
    metavar="PATH",
    help="Where the secrets live on the server [default: /etc/newsletter/newsletter.env].",
)
@click.option(
    "--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="gunicorn workers."
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per gunicorn worker.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="The port gunicorn listens on, on 127.0.0.1.",
)
@click.option(
    "--output",
    default=Path("deploy"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder the files are written to.",
)
@pass_state
def systemd(
    state: State,
    folder: str,
    user: str,
    domain: str | None,
    venv: str | None,
    env_file: str | None,
    workers: int,
    threads: int,
    port: int,
    output: Path,
) -> None:
    """Write systemd units and a Caddyfile for one Linux server, to a folder for review.

    The web app under gunicorn (several workers; PostgreSQL), timers for run-due,
    mailbox process, flush-mail and a daily backup, Caddy in front for TLS, and an
    example environment file that names the secrets (never holds them). Nothing is
    installed: docs/deploy.md says how.

    \b
    Example:
      newsletter deploy systemd --dir /srv/news --user news --domain news.example.org
    """
    from newsletter.ops.deploy import checked_server, secret_variables, unit_files, write_files

    server = checked_server(
        folder,
        user,
        domain=domain,
        venv=venv,
        env_file=env_file,
        workers=workers,
        threads=threads,
        port=port,
    )
    try:
        config = state.config
    except ConfigError:
        config = None  # written on a laptop without the newsletter folder: default names
    for path in write_files(output, unit_files(server, secret_variables(config))):
        click.echo(f"Wrote {path}")
    if config is not None and config.web.proxy_hops != 1:
        click.echo(
            f"Note: newsletter.yaml has web.proxy_hops: {config.web.proxy_hops}; behind Caddy "
            "set it to 1, so the app sees the visitors' addresses."
        )
    click.echo("Review them, then install them as docs/deploy.md says.")
