"""``preview``: a local page that shows an issue as readers will see it, live."""

from __future__ import annotations

import datetime as dt
import webbrowser
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.config import find_config
from newsletter.errors import IssueFileError
from newsletter.preview import DEFAULT_PORT, PreviewServer, Workspace


@cli.command()
@click.argument("issue", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Keep the default unless you know why.",
)
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for this host name (repeatable); the --host address and "
    "loopback names always work. Other names are refused (DNS rebinding).",
)
@click.option(
    "--as",
    "address",
    metavar="EMAIL",
    help="Preview as this subscriber (or 'Name <email>' for sample data).",
)
@click.option(
    "--language",
    metavar="CODE",
    help="Show the issue in this language (de, fr, ar, ...): the theme's words and dates; "
    "default: the issue's language: front matter, else the config's.",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=True,
    show_default=True,
    help="Open the page in the web browser.",
)
@pass_state
def preview(
    state: State,
    issue: Path | None,
    port: int,
    host: str,
    allowed_hosts: tuple[str, ...],
    address: str | None,
    language: str | None,
    open_browser: bool,
) -> None:
    """Preview ISSUE in the browser, updated on every save; without ISSUE, list all issues.

    Shows the email at phone and desktop width, in dark mode, as plain text, its
    headers, the results of 'newsletter check' and its size against Gmail's clipping
    limit. Saving the issue, a template, newsletter.yaml or an image updates the page.
    Stop with Ctrl-C.

    \b
    Examples:
      newsletter preview issues/2026-11-26-stem-cells-in-breast-milk.md
      newsletter preview --as jane@example.org issues/2026-11-26-stem-cells-in-breast-milk.md
      newsletter preview --language de issues/2026-11-26-stem-cells-in-breast-milk.md
      newsletter preview --port 8001
    """
    if issue is not None and not issue.is_file():
        raise IssueFileError(f"{issue}: no such issue file")
    config_path = state.config_path or find_config()
    if language is not None:
        from newsletter.config import load_config
        from newsletter.languages import catalog_for

        catalog_for(language, load_config(config_path).strings, where="preview", key="--language")
    workspace = Workspace(config_path, issue=issue, default_address=address, language=language)
    server = PreviewServer(
        workspace, host=host, port=port, on_change=_report_change, allowed_hosts=allowed_hosts
    )
    url = server.page_url(issue)
    click.echo(f"Previewing at {url}")
    click.echo(f"Watching {workspace.root} for changes. Press Ctrl-C to stop.")
    try:
        if open_browser:
            webbrowser.open(url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    click.echo("Stopped.")


def _report_change(paths: list[Path]) -> None:
    names = ", ".join(path.name for path in paths[:3]) + (" ..." if len(paths) > 3 else "")
    click.echo(f"{dt.datetime.now():%H:%M:%S} changed: {names}")
