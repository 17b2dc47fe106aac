"""Reader: an issue file (YAML front matter + Markdown) -> :class:`~newsletter.models.Issue`.

The Markdown body becomes blocks: runs of text (rendered to HTML and to plain text
from the same tokens), standalone images, and buttons, written as a paragraph that
holds only a link with the ``button`` class: ``[Read the study](https://...){.button}``.
"""

from __future__ import annotations

import copy
import datetime as dt
import gc
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.attrs import attrs_plugin
from pydantic import AfterValidator, Field, ValidationError, model_validator

from newsletter.config import (
    AbOverrides,
    Greeting,
    HttpUrl,
    OneLine,
    Schema,
    describe_validation_error,
    library_paths,
    load_yaml_mapping,
)
from newsletter.errors import ConfigError, IssueFileError
from newsletter.models import (
    Author,
    Block,
    ButtonBlock,
    CallToAction,
    Heading,
    Image,
    ImageBlock,
    Issue,
    TextBlock,
)
from newsletter.render.markdown_links import use_fast_links
from newsletter.render.text import PlainText
from newsletter.safe_text import first_control

ISSUE_NAME = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})-(?P<slug>[a-z0-9][a-z0-9-]*)")


class AuthorMatter(Schema):
    name: OneLine
    bio: str = ""
    image: str | None = None
    image_alt: str = ""


class ImageMatter(Schema):
    src: str = Field(min_length=1)
    alt: str = Field(min_length=1, description="Required: describe the image for screen readers.")
    caption: str = ""


class CallToActionMatter(Schema):
    text: OneLine = Field(min_length=1)
    url: HttpUrl


def _no_control_characters(value: str) -> str:
    control = first_control(value)
    if control is not None:
        raise ValueError(
            f"contains the control character U+{ord(control):04X}, which would reach mail "
            "headers and terminals; remove it"
        )
    return value


# The subject goes into the Subject header, the title and preheader into the CLI's output.
HeaderLine = Annotated[OneLine, AfterValidator(_no_control_characters)]


def _variants(value: list[str]) -> list[str]:
    if not 2 <= len(value) <= 4:
        raise ValueError(f"give 2 to 4 subjects to test, not {len(value)}")
    if any(not variant.strip() for variant in value):
        raise ValueError("a subject variant is empty; write each subject out")
    seen = {variant.strip() for variant in value}
    if len(seen) != len(value):
        raise ValueError("two subject variants are the same; give each a different subject")
    return value


# A subject test's subjects (docs/subject-tests.md): 2 to 4, distinct, none empty.
SubjectVariants = Annotated[list[HeaderLine], AfterValidator(_variants)]


class FrontMatter(Schema):
    title: HeaderLine = Field(min_length=1)
    subject: HeaderLine | None = None
    preheader: HeaderLine = ""
    date: dt.date | None = None
    author: AuthorMatter | None = None
    topics: list[str] = Field(default_factory=list)
    hero: ImageMatter | None = None
    cta: CallToActionMatter | None = None
    greeting: Greeting | None = None  # None: the config's greeting
    # This issue's language, for its mail and web page; None: the config's.
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")
    # When to send: read by newsletter.send.schedule (a time in the config's timezone, or
    # with an offset); YAML gives a datetime for full timestamps, a string otherwise.
    send_at: dt.datetime | str | None = None
    # A step of an automation's sequence: how long after the reader became active it
    # goes out ("3 days"); read by newsletter.automations.sequences.
    after: str | int | None = None
    # Who among the topics' readers gets it: a segment's name or expression, resolved
    # against newsletter.yaml by newsletter.send.plan.plan_send (docs/segments.md).
    segment: OneLine | None = Field(None, min_length=1)
    # A subject test: the sample gets these subjects, the rest the winner; ab: its own
    # settings over the config's ab: (newsletter.send.subject_test).
    subject_variants: SubjectVariants | None = None
    ab: AbOverrides | None = None

    @model_validator(mode="after")
    def _one_kind_of_subject(self) -> FrontMatter:
        if self.subject_variants is not None and self.subject is not None:
            raise ValueError(
                "subject_variants: give either subject or subject_variants, not both (the "
                "first variant is the subject of the preview)"
            )
        if self.ab is not None and self.subject_variants is None:
            raise ValueError("ab: only for a subject test; add subject_variants: or remove ab:")
        return self


def markdown_parser(*, fast: bool | None = None) -> MarkdownIt:
    """The issue parser; ``fast``: with render/markdown_links.py's link fast paths, by
    default unless ``NEWSLETTER_LIBRARY_PATHS`` is set (markdown-it-py's own code)."""
    # Raw HTML is off: issue text is escaped, and mail clients mangle hand-written HTML.
    # linkify and typographer stay off (the commonmark preset): both cost time per word.
    parser = MarkdownIt("commonmark", {"html": False}).use(attrs_plugin)
    fast = not library_paths() if fast is None else fast
    return use_fast_links(parser) if fast else parser


_PARSER = markdown_parser()
# Inline markup (emphasis in emphasis ...) deeper than this is refused. Block nesting
# (quotes, lists) is already capped by markdown-it's maxNesting (20 levels).
MAX_INLINE_NESTING = 16


def split_front_matter(path: Path, source: str) -> tuple[str, str, int]:
    """Return (front matter, body, line number where the body starts)."""
    source = source.removeprefix("\ufeff")
    lines = source.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise IssueFileError(
            f"{path}:1: an issue starts with a '---' line, then YAML front matter "
            "(title, date, ...), then another '---' line"
        )
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise IssueFileError(f"{path}: the front matter has no closing '---' line; add one")


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

    body_reader = _BodyReader(path, body_line, plain_text=plain_text)
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


class _BodyReader:
    """Splits the Markdown tokens into blocks and renders each run twice."""

    def __init__(self, path: Path, first_line: int, *, plain_text: bool = True) -> None:
        self.path = path
        self.plain_text = plain_text
        self.first_line = first_line
        self.links: list[str] = []
        self.link_numbers: dict[str, int] = {}
        self.headings: list[Heading] = []

    def read(self, body: str) -> list[Block]:
        with _collector_paused():
            return self._read(body)

    def _read(self, body: str) -> list[Block]:
        tokens = _PARSER.parse(body)
        self._check_nesting(tokens)
        blocks: list[Block] = []
        run: list[Token] = []
        for group in _image_lines_apart(_top_level_groups(tokens)):
            special = self._special_block(group)
            if special is None:
                run.extend(group)
                continue
            if run:
                blocks.append(self._text_block(run))
                run = []
            blocks.append(special)
        if run:
            blocks.append(self._text_block(run))
        return blocks

    def _check_nesting(self, tokens: list[Token]) -> None:
        """Refuse inline markup nested deeper than any issue needs: the MJML compiler
        (MRML) recurses once per level and crashes the whole process (a segfault: no
        message, and the web app's archive page with it) on a few thousand."""
        for token in tokens:
            if token.type != "inline" or not token.children:
                continue
            depth = max(child.level for child in token.children)
            if depth > MAX_INLINE_NESTING:
                line = self.first_line + (token.map[0] if token.map else 0)
                raise IssueFileError(
                    f"{self.path}:{line}: emphasis, links or other inline markup nested "
                    f"{depth} levels deep; at most {MAX_INLINE_NESTING} are allowed (the mail "
                    "cannot be rendered). Remove the extra * or _ around this text"
                )

    def _special_block(self, group: list[Token]) -> Block | None:
        if len(group) != 3 or group[0].type != "paragraph_open":
            return None
        children = [c for c in group[1].children or [] if not _is_blank(c)]
        if len(children) == 1 and children[0].type == "image":
            image = children[0]
            alt = "".join(child.content for child in image.children or [])
            return ImageBlock(
                Image(str(image.attrs["src"]), alt, str(image.attrs.get("title", "")))
            )
        if (
            len(children) >= 3
            and children[0].type == "link_open"
            and children[-1].type == "link_close"
            and "button" in str(children[0].attrs.get("class", "")).split()
        ):
            text = "".join(child.content for child in children[1:-1])
            return ButtonBlock(text=text, url=str(children[0].attrs["href"]))
        return None

    def _text_block(self, tokens: list[Token]) -> TextBlock:
        for index, token in enumerate(tokens):
            if token.type == "heading_open":
                line = self.first_line + (token.map[0] if token.map else 0)
                self.headings.append(Heading(int(token.tag[1]), tokens[index + 1].content, line))
        html = _PARSER.renderer.render(tokens, _PARSER.options, {})
        text = PlainText(self.links, self.link_numbers).render(tokens) if self.plain_text else ""
        return TextBlock(html=html.strip(), text=text)


class _CollectorPause:
    """Pauses the cyclic garbage collector while issue bodies are parsed.

    markdown-it makes some eight tokens per paragraph, none in reference cycles, and
    keeps them all until the issue is read; the collector would walk that growing heap
    again and again (a sixth of reading an issue of 100,000 links, even when it runs
    rarely), while reference counting frees the tokens anyway. Threads that read issues
    at the same time (the web app's) share one pause: the collector comes back when the
    last of them finishes, and only if it was on before the first began.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._readers == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1
                if self._readers == 0 and self._was_enabled:
                    gc.enable()


_collector_paused = _CollectorPause()


def _is_blank(token: Token) -> bool:
    return token.type in ("softbreak", "hardbreak") or (
        token.type == "text" and not token.content.strip()
    )


def own_line_images(children: list[Token]) -> list[int]:
    """Where in a paragraph's inline children an image stands on a line of its own (text
    may sit on the lines before and after it): such an image is shown as an image block,
    just as if blank lines set it apart."""
    return [
        index
        for index, child in enumerate(children)
        if child.type == "image"
        and _alone(children[index - 1 :: -1] if index else [])
        and _alone(children[index + 1 :])
    ]


def _alone(neighbours: Iterable[Token]) -> bool:
    """Whether nothing but spaces lies between the image and a line break (or the end)."""
    for token in neighbours:
        if token.type in ("softbreak", "hardbreak"):
            return True
        if not (token.type == "text" and not token.content.strip()):
            return False
    return True


def _image_lines_apart(groups: Iterable[list[Token]]) -> Iterable[list[Token]]:
    """A paragraph with an image on a line of its own, split around the image."""
    for group in groups:
        children = group[1].children or [] if len(group) == 3 else []
        images = own_line_images(children) if group[0].type == "paragraph_open" else []
        if not images or len([child for child in children if not _is_blank(child)]) == 1:
            yield group
            continue
        start = 0
        for end in [*images, len(children)]:
            for piece in (children[start:end], children[end : end + 1]):
                while piece and _is_blank(piece[0]):
                    piece = piece[1:]
                while piece and _is_blank(piece[-1]):
                    piece = piece[:-1]
                if piece:
                    inline = copy.copy(group[1])
                    inline.children = piece
                    yield [group[0], inline, group[2]]
            start = end + 1


def _top_level_groups(tokens: Iterable[Token]) -> Iterable[list[Token]]:
    group: list[Token] = []
    depth = 0
    for token in tokens:
        group.append(token)
        depth += token.nesting
        if depth == 0:
            yield group
            group = []


def issue_slug(path: Path) -> str:
    """The slug in an issue's links: ``2026-11-26-stem-cells.md`` -> ``stem-cells``."""
    name = ISSUE_NAME.fullmatch(path.stem)
    return name["slug"] if name else re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")


def list_issues(issues_dir: Path) -> list[Path]:
    """Issue files in ``issues_dir``, newest first (by file name, which starts with the date)."""
    if not issues_dir.is_dir():
        return []
    return sorted(issues_dir.glob("*.md"), key=lambda path: path.name, reverse=True)
