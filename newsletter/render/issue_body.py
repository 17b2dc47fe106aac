"""An issue's Markdown body -> blocks: runs of text (rendered to HTML and to plain text
from the same tokens), standalone images, and buttons, written as a paragraph that
holds only a link with the ``button`` class: ``[Read the study](https://...){.button}``.
"""

from __future__ import annotations

import copy
import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.attrs import attrs_plugin

from newsletter.config import library_paths
from newsletter.errors import IssueFileError
from newsletter.models import Block, ButtonBlock, Heading, Image, ImageBlock, TextBlock
from newsletter.render.markdown_links import use_fast_links
from newsletter.render.text import PlainText


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


class BodyReader:
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
