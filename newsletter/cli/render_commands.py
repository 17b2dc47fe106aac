"""``init``, ``new``, ``build`` and ``check``: writing and rendering issues."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter.cli import State, cli, pass_state
from newsletter.send.providers import PROVIDERS

# The library is imported inside each command: each loads only the stages it uses.

if TYPE_CHECKING:
    from newsletter.render.checks import Finding

ISSUE = click.Path(dir_okay=False, path_type=Path)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(folder: Path) -> None:
    """Create a newsletter folder that builds out of the box.

    Also runs 'git init' there when git is installed and the folder is not already in
    a repository.

    \b
    Example:
      newsletter init my-newsletter
    """
    from newsletter.author.scaffold import init_project, start_repository

    created = init_project(folder)
    for path in created:
        click.echo(f"created {path}")
    if start_repository(folder):
        click.echo(f"started a git repository in {folder} (git init)")
    issue = created[-1].relative_to(folder)
    click.echo(f"Next: cd {folder} && newsletter build {issue}")
    click.echo(
        f"Then write the issue ('newsletter preview {issue}' shows it as you save) and run "
        f"'newsletter check {issue}': it lists what to fix before sending, starting with "
        "the starter text still to replace."
    )


@cli.command()
@click.argument("title", required=False)
@click.option(
    "--from",
    "from_source",
    metavar="URL|FILE.html",
    help="Make the issue from a web article: its text, headings, links and images.",
)
@click.option(
    "--from-feed",
    "feed",
    metavar="URL|FILE",
    help="Make a digest issue from an RSS or Atom feed's items.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="With --from-feed: only items published on or after this day.",
)
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --from-feed: at most this many items, newest first.",
)
@click.option(
    "--automation",
    metavar="NAME",
    help="Start a step of the sequence NAME (its folder under automations:) instead.",
)
@pass_state
def new(
    state: State,
    title: str | None,
    from_source: str | None,
    feed: str | None,
    since: dt.datetime | None,
    limit: int,
    automation: str | None,
) -> None:
    """Start a new issue, dated today, from the starter template.

    With --from, the issue is made from a web article (or a saved page): title, author,
    the text as Markdown without the page's share buttons, tags and comments, its images
    downloaded into issues/images/ and a link to where it was first published. Images
    without a real description get an 'alt:' that 'newsletter check' reports until you
    write one. With --from-feed, a digest of a feed's latest posts. With --automation,
    a step of a sequence (see docs/automations.md): the first one is due right away
    ('after: 0 days'), later ones 'after: 3 days' until you change it.

    \b
    Examples:
      newsletter new "Stem cells in breast milk"
      newsletter new --from https://example.org/blog/stem-cells/
      newsletter new --from-feed https://example.org/feed/ --since 2026-11-01 --limit 5
      newsletter new --automation welcome "Thanks for joining"
    """
    chosen = [name for name, value in (("TITLE", title), ("--from", from_source),
                                       ("--from-feed", feed)) if value]  # fmt: skip
    if len(chosen) != 1:
        raise click.UsageError("give a TITLE, --from URL or --from-feed URL (one of them)")
    if (since is not None or limit != 10) and feed is None:
        raise click.UsageError("--since and --limit go with --from-feed")
    if automation is not None:
        if not title:
            raise click.UsageError("--automation takes a TITLE (not --from or --from-feed)")
        from newsletter.automations.sequences import new_step

        path = new_step(state.config, automation, title)
        click.echo(f"created {path}")
        click.echo(f"Next: write it, then newsletter check {path}")
        return
    issues_dir = state.config.issues_dir
    if from_source:
        from newsletter.author.article_import import import_article

        imported = import_article(from_source, issues_dir)
        for image in imported.images:
            click.echo(f"downloaded {image}")
        for note in imported.notes:
            click.echo(f"note: {note}")
        path = imported.path
    elif feed:
        from newsletter.author.feed_import import import_feed

        path = import_feed(feed, issues_dir, since=since.date() if since else None, limit=limit)
    else:
        from newsletter.author.scaffold import new_issue

        path = new_issue(issues_dir, str(title))
    click.echo(f"created {path}")
    if from_source or feed:
        click.echo(f"Next: read it through, then newsletter check {path}")


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
    from newsletter.render.build import build_issue

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
@click.option(
    "--provider",
    type=click.Choice(sorted(PROVIDERS)),
    help="Check for sending through this provider, as send --provider does (a subject "
    "test's measure, the return path). Default: 'provider' in newsletter.yaml.",
)
@pass_state
def check(
    state: State,
    issues: tuple[Path, ...],
    request_links: bool,
    timeout: float,
    provider: str | None,
) -> None:
    """Check ISSUES for problems before sending; exit 1 on any error.

    Checks the HTML size against Gmail's clipping limit, alt text, link and image URLs,
    the unsubscribe link and postal address in both parts, subject and preheader length,
    template variables, heading order, the generated MJML, starter text left in,
    Markdown that did not parse and unknown {.class} attributes.

    \b
    Examples:
      newsletter check issues/2026-11-26-stem-cells-in-breast-milk.md
      newsletter check --links issues/*.md
      newsletter check --provider sendgrid issues/2026-11-26-stem-cells-in-breast-milk.md
    """
    from newsletter.render.checks import check_issue, config_findings, has_errors, link_findings

    for finding in config_findings(state.config, provider):
        click.echo(str(finding))
    failed = False
    for path in issues:
        findings, compiled = check_issue(path, state.config, provider)
        findings += _step_findings(state, path)
        if request_links and compiled is not None:
            findings += link_findings(compiled, state.config, timeout=timeout)
        for finding in findings:
            click.echo(str(finding))
        failed = failed or has_errors(findings)
        if not findings:
            click.echo(f"{path}: ok")
    if failed:
        raise click.exceptions.Exit(1)


def _step_findings(state: State, path: Path) -> list[Finding]:
    """A step of a configured sequence must also say when it goes out (``after:``)."""
    from newsletter.automations.sequences import step_of
    from newsletter.errors import AutomationError, NewsletterError
    from newsletter.render.checks import Finding

    try:
        step_of(state.config, path)
    except AutomationError as error:
        return [Finding("error", str(error).removeprefix(f"{path}: "), str(path))]
    except NewsletterError:
        return []  # the issue checks said what is wrong with the file
    return []
