"""Checks on what the editor wrote, before rendering: text left over from the starter
template, Markdown that did not parse (a link printed raw), unknown ``{.class}``
attributes, and image alt text still to be filled in.

Each problem names the line of the issue file. :mod:`newsletter.render.checks` runs these with
the checks of the compiled issue.
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from markdown_it.token import Token

from newsletter.models import Issue
from newsletter.render.front_matter import split_front_matter
from newsletter.render.issue_body import markdown_parser, own_line_images

STARTER_ISSUE = Path(__file__).parent.parent / "starter" / "issue.md"
STARTER_TITLE = "Welcome to our newsletter"  # the issue `newsletter init` creates
KNOWN_CLASSES = ("button",)  # the {.class} attributes the theme gives a meaning to
# What `newsletter new --from` writes where an image had no alt text.
ALT_PLACEHOLDER = "alt:"
# "](" or "![" left in the text: a link or image whose URL did not parse (a space in it,
# a missing bracket).
_RAW_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)?|\]\(")


@dataclass(frozen=True)
class SourceProblem:
    level: str  # "error" or "warning"
    message: str
    line: int | None = None
    url: str | None = None  # a URL this problem explains better than "not absolute" would


def source_problems(issue: Issue) -> Iterator[SourceProblem]:
    source = issue.path.read_text(encoding="utf-8")
    _, body, first_line = split_front_matter(issue.path, source)
    yield from _starter_leftovers(issue, body, first_line)
    tokens = markdown_parser().parse(body)
    for token in tokens:
        if token.type != "inline" or not token.map:
            continue
        line = first_line + token.map[0]
        yield from _unparsed_markdown(token, line)
        yield from _unknown_classes(token, line)
        yield from _alt_placeholders(token, line)
        yield from _images_in_sentences(token, line)
    if issue.hero and issue.hero.alt.strip().startswith(ALT_PLACEHOLDER):
        yield SourceProblem("error", f"hero image {issue.hero.src}: fill in its alt text")


def _starter_leftovers(issue: Issue, body: str, first_line: int) -> Iterator[SourceProblem]:
    starter_matter, starter_body, _ = split_front_matter(
        STARTER_ISSUE, STARTER_ISSUE.read_text(encoding="utf-8")
    )
    preheader = re.search(r"^preheader: (.+)$", starter_matter, re.MULTILINE)
    if preheader and issue.preheader.strip() == preheader[1].strip():
        yield SourceProblem(
            "error",
            "the preheader is the starter template's; write one sentence about this issue",
        )
    if issue.title.strip() == STARTER_TITLE:
        yield SourceProblem("warning", f"the title is the starter's ({STARTER_TITLE!r})")
    starter_lines = {line.strip() for line in starter_body.splitlines() if len(line.strip()) > 20}
    for offset, line in enumerate(body.splitlines()):
        if line.strip() in starter_lines:
            yield SourceProblem(
                "error",
                f"starter template text left in the issue: {line.strip()[:60]!r}; "
                "replace or delete it",
                first_line + offset,
            )
            break  # one finding is enough to send the editor to the starter text


def _text_of(token: Token) -> Iterator[str]:
    for child in token.children or []:
        if child.type == "text":
            yield child.content


def _unparsed_markdown(token: Token, line: int) -> Iterator[SourceProblem]:
    text = "".join(_text_of(token))
    match = _RAW_LINK.search(text)
    if match:
        yield SourceProblem(
            "error",
            f"Markdown that did not become a link or image: {match[0]!r} would be printed "
            "as is; check the brackets and that the URL has no spaces",
            line,
        )


def _unknown_classes(token: Token, line: int) -> Iterator[SourceProblem]:
    for child in token.children or []:
        for name in str(child.attrs.get("class", "")).split():
            if name in KNOWN_CLASSES:
                continue
            close = difflib.get_close_matches(name, KNOWN_CLASSES, n=1)
            hint = (
                f"did you mean {{.{close[0]}}}?"
                if close
                else "known: " + ", ".join(f"{{.{known}}}" for known in KNOWN_CLASSES)
            )
            yield SourceProblem("error", f"unknown attribute {{.{name}}}: {hint}", line)


def _alt_placeholders(token: Token, line: int) -> Iterator[SourceProblem]:
    for child in token.children or []:
        if child.type == "image":
            alt = "".join(grandchild.content for grandchild in child.children or [])
            if alt.strip().startswith(ALT_PLACEHOLDER):
                yield SourceProblem(
                    "error",
                    f"image {child.attrs.get('src')}: fill in its alt text (describe what it "
                    "shows, for screen readers and for readers with images off)",
                    line,
                )


def _images_in_sentences(token: Token, line: int) -> Iterator[SourceProblem]:
    """A local image inside a line of text stays a relative URL in the mail (only an image
    on a line of its own is resized, copied to the assets and linked absolutely)."""
    children = token.children or []
    nested = token.level > 1  # in a list or a quote: only top-level images are blocks
    alone = set() if nested else set(own_line_images(children))
    for index, child in enumerate(children):
        src = str(child.attrs.get("src", ""))
        if child.type != "image" or index in alone:
            continue
        if urllib.parse.urlsplit(src).scheme in ("http", "https"):
            continue
        breaks = sum(c.type in ("softbreak", "hardbreak") for c in children[:index])
        alt = "".join(grandchild.content for grandchild in child.children or [])
        where, change = (
            ("is inside a list or a quote", "in a paragraph of its own, outside it")
            if nested
            else ("sits inside a sentence", "on a line of its own")
        )
        yield SourceProblem(
            "error",
            f"image {src!r} {where}, where it cannot be resized or sent: "
            f"put ![{alt}]({src}) {change}",
            line + breaks,
            url=src,
        )
