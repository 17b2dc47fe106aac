"""Reader: an issue file (YAML front matter + Markdown) -> :class:`~newsletter.models.Issue`.

The front matter is read by :mod:`newsletter.render.front_matter`, the Markdown body
into blocks by :mod:`newsletter.render.issue_body`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from newsletter.config import describe_validation_error, load_yaml_mapping
from newsletter.errors import ConfigError, IssueFileError
from newsletter.models import Author, CallToAction, Image, Issue
from newsletter.render.front_matter import FrontMatter, split_front_matter
from newsletter.render.issue_body import BodyReader

ISSUE_NAME = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})-(?P<slug>[a-z0-9][a-z0-9-]*)")


def read_issue(path: Path, *, topics: Sequence[str] = ()) -> Issue:
    """Read and validate one issue file. ``topics`` are the ids the config knows."""
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IssueFileError(f"{path}: no such issue file") from None
    except UnicodeDecodeError:
        raise IssueFileError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    return parse_issue(path, source, topics=topics)


def parse_issue(
    path: Path, source: str, *, topics: Sequence[str] = (), plain_text: bool = True
) -> Issue:
    """Read an issue from its text, as if it were the file at ``path`` (the public site
    reads the text stored when its campaign started, not the file as it is now).
    ``plain_text=False`` leaves each block's text part empty: the web pages do not use
    it, and it is a third of the time of reading an issue."""
    matter_text, body, body_line = split_front_matter(path, source)
    try:
        data = load_yaml_mapping(path, "\n" + matter_text, what="the front matter")
    except ConfigError as error:  # same message, but it is the issue file at fault
        raise IssueFileError(str(error)) from None
    try:
        matter = FrontMatter.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error, f"{path}: front matter")
        raise IssueFileError("\n".join(problems), problems=problems) from None

    unknown = [topic for topic in matter.topics if topic not in topics]
    if unknown:
        known = ", ".join(topics) or "none: add topics to newsletter.yaml"
        raise IssueFileError(
            f"{path}: front matter: topics: unknown topic {unknown[0]!r}; known topics: {known}"
        )

    name = ISSUE_NAME.fullmatch(path.stem)
    date = matter.date or (dt.date.fromisoformat(name["date"]) if name else None)
    if date is None:
        raise IssueFileError(
            f"{path}: front matter: date: required when the file name does not start "
            "with YYYY-MM-DD-; add 'date: 2026-11-26'"
        )
    slug = issue_slug(path)

    body_reader = BodyReader(path, body_line, plain_text=plain_text)
    blocks = body_reader.read(body)
    author = None
    if matter.author:
        author = Author(
            name=matter.author.name,
            bio=matter.author.bio.strip(),
            image=matter.author.image,
            image_alt=matter.author.image_alt or matter.author.name,
        )
    hero = Image(matter.hero.src, matter.hero.alt, matter.hero.caption) if matter.hero else None
    cta = CallToAction(matter.cta.text, matter.cta.url) if matter.cta else None
    return Issue(
        path=path,
        slug=slug,
        title=matter.title,
        subject=(matter.subject_variants or [matter.subject or matter.title])[0],
        preheader=matter.preheader,
        date=date,
        author=author,
        topics=tuple(matter.topics),
        hero=hero,
        cta=cta,
        blocks=tuple(blocks),
        headings=tuple(body_reader.headings),
        links=tuple(body_reader.links),
        greeting=None if matter.greeting is None else matter.greeting or "",
        language=matter.language,
        segment=matter.segment,
        subject_variants=tuple(matter.subject_variants or ()),
        ab=tuple(matter.ab.model_dump(exclude_unset=True).items()) if matter.ab else (),
    )


def issue_slug(path: Path) -> str:
    """The slug in an issue's links: ``2026-11-26-stem-cells.md`` -> ``stem-cells``."""
    name = ISSUE_NAME.fullmatch(path.stem)
    return name["slug"] if name else re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")


def list_issues(issues_dir: Path) -> list[Path]:
    """Issue files in ``issues_dir``, newest first (by file name, which starts with the date)."""
    if not issues_dir.is_dir():
        return []
    return sorted(issues_dir.glob("*.md"), key=lambda path: path.name, reverse=True)
