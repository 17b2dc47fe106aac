"""The plain-text part of an issue: Markdown tokens -> readable text of at most
``TEXT_WIDTH`` columns, links as numbered references ("words [3]") listed at the end of
the message. Read by :mod:`newsletter.render.issue_body` from the same tokens as the HTML."""

from __future__ import annotations

import textwrap

from markdown_it.token import Token

TEXT_WIDTH = 72


class PlainText:
    """Markdown tokens -> readable plain text, links as numbered references."""

    def __init__(self, links: list[str], numbers: dict[str, int]) -> None:
        self.links = links  # in order of first use; shared by the text blocks
        self.numbers = numbers  # link -> its number (1-based), the same links

    def render(self, tokens: list[Token]) -> str:
        out: list[str] = []
        prefixes: list[str] = []  # quote markers and list indents of the enclosing blocks
        lists: list[int | None] = []  # next number of each open ordered list; None if bullets
        first_line_prefix: str | None = None
        tight_item_last = False
        for index, token in enumerate(tokens):
            kind = token.type
            if kind == "heading_open":
                out.append(_plain_heading(self.inline(tokens[index + 1]), int(token.tag[1])))
            elif kind == "paragraph_open":
                text = self.inline(tokens[index + 1])
                indent = "".join(prefixes)
                starts_item = first_line_prefix is not None
                first = indent if first_line_prefix is None else first_line_prefix
                first_line_prefix = None
                wrapped = _wrap(text, first, indent)
                # Items of a tight list (markdown-it hides their paragraphs) stay together.
                if token.hidden and starts_item and out and tight_item_last:
                    out[-1] += "\n" + wrapped
                else:
                    out.append(wrapped)
                tight_item_last = token.hidden
            elif kind == "blockquote_open":
                prefixes.append("> ")
            elif kind in ("blockquote_close", "list_item_close"):
                prefixes.pop()
            elif kind == "bullet_list_open":
                lists.append(None)
            elif kind == "ordered_list_open":
                lists.append(int(token.attrs.get("start", 1)))
            elif kind in ("bullet_list_close", "ordered_list_close"):
                lists.pop()
            elif kind == "list_item_open":
                number = lists[-1]
                marker = "- " if number is None else f"{number}. "
                if number is not None:
                    lists[-1] = number + 1
                first_line_prefix = "".join(prefixes) + marker
                prefixes.append(" " * len(marker))
            elif kind in ("code_block", "fence"):
                indent = "".join(prefixes) + "    "
                out.append("\n".join(indent + line for line in token.content.rstrip().splitlines()))
            elif kind == "hr":
                out.append("".join(prefixes) + "-" * 20)
        return _join_paragraphs(out)

    def inline(self, token: Token) -> str:
        parts: list[str] = []
        href_stack: list[str] = []
        start_stack: list[int] = []
        for child in token.children or []:
            kind = child.type
            if kind in ("text", "html_inline"):
                parts.append(child.content)
            elif kind in ("em_open", "em_close"):
                parts.append("*")  # *emphasis* reads as emphasis in plain text too
            elif kind in ("strong_open", "strong_close"):
                parts.append("**")
            elif kind == "code_inline":
                parts.append(f"`{child.content}`")
            elif kind == "softbreak":
                parts.append(" ")
            elif kind == "hardbreak":
                parts.append("\n")
            elif kind == "image":
                alt = "".join(c.content for c in child.children or [])
                parts.append(f"[Image: {alt}]")
            elif kind == "link_open":
                href_stack.append(str(child.attrs["href"]))
                start_stack.append(len(parts))
            elif kind == "link_close":
                href = href_stack.pop()
                label = "".join(parts[start_stack.pop() :])
                if label.strip() != href and not href.startswith("mailto:"):
                    parts.append(f" [{self.reference(href)}]")
                elif href.startswith("mailto:") and label.strip() != href[7:]:
                    parts.append(f" <{href[7:]}>")
        return "".join(parts)

    def reference(self, href: str) -> int:
        # A dict beside the list: a search of the list per link made an issue of 250,000
        # links take minutes (quadratic).
        number = self.numbers.get(href)
        if number is None:
            self.links.append(href)
            number = self.numbers[href] = len(self.links)
        return number


def _plain_heading(text: str, level: int) -> str:
    """Levels a reader can tell apart: ==== under a level 1 (the title's style), ----
    under a level 2, and ### before the deeper ones."""
    if level >= 3:
        return _wrap(f"{'#' * level} {text}", "", "")
    wrapped = _wrap(text, "", "")
    width = max(len(line) for line in wrapped.splitlines())
    return wrapped + "\n" + ("=" if level == 1 else "-") * width


def _wrap(text: str, first: str, rest: str) -> str:
    if "\n" not in text and _fits_one_line(text, first):
        return first + text  # what textwrap returns, without its chunking (most paragraphs)
    lines = []
    for index, paragraph_line in enumerate(text.split("\n")):
        lines.extend(
            textwrap.wrap(
                paragraph_line,
                width=TEXT_WIDTH,
                initial_indent=first if index == 0 else rest,
                subsequent_indent=rest,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [first.rstrip()]
        )
    return "\n".join(lines)


def _fits_one_line(text: str, indent: str) -> bool:
    """Whether textwrap would leave ``indent + text`` as it is: it fits, has no space at
    either end to drop, and no tab or other whitespace for textwrap to replace
    (isprintable() is False for all of those but the plain space)."""
    return (
        0 < len(text) <= TEXT_WIDTH - len(indent)
        and text.isprintable()
        and text[0] != " "
        and text[-1] != " "
    )


def _join_paragraphs(parts: list[str]) -> str:
    return "\n\n".join(part for part in parts if part.strip())
