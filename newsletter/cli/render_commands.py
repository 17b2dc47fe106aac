"""``init``, ``new``, ``build`` and ``check``: writing and rendering issues."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state

# The library is imported inside each command: each loads only the stages it uses.

ISSUE = click.Path(dir_okay=False, path_type=Path)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(folder: Path) -> None:
    """Create a newsletter folder that builds out of the box.

    \b
    Example:
      newsletter init my-newsletter
    """
    from newsletter.scaffold import init_project

    for path in init_project(folder):
        click.echo(f"created {path}")
    click.echo(f"Next: cd {folder} && newsletter check issues/*.md")


@cli.command()
@click.argument("title")
@pass_state
def new(state: State, title: str) -> None:
    """Start a new issue, dated today, from the starter template.

    \b
    Example:
      newsletter new "Stem cells in breast milk"
    """
    from newsletter.scaffold import new_issue

    path = new_issue(state.config.issues_dir, title)
    click.echo(f"created {path}")


@cli.command()
@click.argument("issue", type=ISSUE)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build"),
    show_default=True,
    help="Folder to write into; the issue goes into OUT/<slug>/.",
)
@pass_state
def build(state: State, issue: Path, out_dir: Path) -> None:
    """Render ISSUE into email.html, email.txt and email.mjml.

    \b
    Example:
      newsletter build issues/2026-11-26-stem-cells-in-breast-milk.md
    """
    from newsletter.build import build_issue

    result = build_issue(issue, state.config, out_dir)
    for path, size in result.files.items():
        click.echo(f"{path}  {size / 1024:.1f} KB")
    if result.assets:
        click.echo(f"{len(result.assets)} image(s) copied to {out_dir / 'assets'}")


@cli.command()
@click.argument("issues", nargs=-1, required=True, type=ISSUE)
@click.option(
    "--links",
    "request_links",
    is_flag=True,
    help="Also request every link and image URL (concurrently; working ones are "
    "remembered for a day in build/.cache/) and report the broken ones.",
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for each link with --links.",
)
@pass_state
def check(state: State, issues: tuple[Path, ...], request_links: bool, timeout: float) -> None:
    """Check ISSUES for problems before sending; exit 1 on any error.

    Checks the HTML size against Gmail's clipping limit, alt text, link and image URLs,
    the unsubscribe link and postal address in both parts, subject and preheader length,
    template variables, heading order, the generated MJML, starter text left in,
    Markdown that did not parse and unknown {.class} attributes.

    \b
    Examples:
      newsletter check issues/2026-11-26-stem-cells-in-breast-milk.md
      newsletter check --links issues/*.md
    """
    from newsletter.checks import check_issue, has_errors, link_findings

    failed = False
    for path in issues:
        findings, compiled = check_issue(path, state.config)
        if request_links and compiled is not None:
            findings += link_findings(compiled, state.config, timeout=timeout)
        for finding in findings:
            click.echo(str(finding))
        failed = failed or has_errors(findings)
        if not findings:
            click.echo(f"{path}: ok")
    if failed:
        raise click.exceptions.Exit(1)
