"""``newsletter site``: the public site as static files."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state


@cli.group()
def site() -> None:
    """Build the public site (web versions of the sent issues, archive, feeds) as files."""


@site.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("site"),
    show_default=True,
    help="Folder to write the site into (created if missing).",
)
@pass_state
def build(state: State, out: Path) -> None:
    """Write the home page, every sent issue's web version, the feeds, the sitemap and
    the images into OUT, for any static host (the Subscribe forms go to site_url).

    \b
    Example:
      newsletter site build --out site/ && rsync -a site/ host:/var/www/news/
    """
    from newsletter.site.export import build_site

    summary = build_site(state.config, out)
    click.echo(
        f"Wrote {summary.issues} issue(s): {summary.pages} pages and feeds, "
        f"{summary.images} image(s) to {out} in {summary.seconds:.1f} s."
    )
    for missing in summary.missing:
        click.echo(f"Warning: image {missing} not found; its pages show a broken image", err=True)
