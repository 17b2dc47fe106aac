"""Fast paths for markdown-it's link handling, for issues with many thousands of links.

markdown-it-py normalises every link destination through mdurl (parse, punycode,
percent-encode, format): about 40% of reading a link-heavy issue (issue 11, item 10).
For the usual link, ``https://host/path?query#fragment`` in plain ASCII, all of that
returns the URL unchanged, so these functions recognise that shape with one regular
expression and hand anything else to markdown-it's own functions. The output is the
same either way; tests/render/test_markdown_links.py compares both on many tricky URLs
and Markdown snippets. The same goes for the link rule itself (:func:`plain_link`).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from markdown_it import MarkdownIt
from markdown_it.common.normalize_url import normalizeLink, normalizeLinkText
from markdown_it.helpers import parse_link_destination, parse_link_label, parse_link_title
from markdown_it.rules_inline import StateInline

# What mdurl leaves alone: a lowercase http(s) scheme, a host of ASCII letters, digits and
# hyphens in non-empty dot-separated labels of at most 63 characters (mdurl's own limit;
# no port, no user, no IPv6 brackets, no "xn--" that the text form would decode), then
# only characters mdurl.encode keeps (letters, digits, ;/?:@&=+$,-_.!~*'()#) and
# percent escapes of two hex digits. The host must end where mdurl ends it: at / ? # or
# the end.
_PLAIN_URL = re.compile(
    r"https?://(?P<host>(?!xn--)[A-Za-z0-9-]{1,63}(?:\.(?!xn--)[A-Za-z0-9-]{1,63})*)"
    r"(?:[/?#](?:[A-Za-z0-9;/?:@&=+$,\-_.!~*'()#]|%[0-9A-Fa-f]{2})*)?"
)
_MAX_HOST_LENGTH = 255  # mdurl drops a longer host
# A destination without <>, escapes, parentheses (nesting is counted) or entities (decoded).
_PLAIN_DESTINATION = re.compile(r"[^\x00-\x20\x7f\\()&<]+")


def _is_plain(url: str) -> bool:
    match = _PLAIN_URL.fullmatch(url)
    return match is not None and len(match["host"]) <= _MAX_HOST_LENGTH


def normalize_link(url: str) -> str:
    """``markdown_it.common.normalize_url.normalizeLink``, without the work for plain URLs."""
    return url if _is_plain(url) else normalizeLink(url)


def normalize_link_text(link: str) -> str:
    """``normalizeLinkText`` (autolinks' visible text), without the work for plain URLs.
    This one decodes %-escapes, so a URL with any goes the long way."""
    return link if "%" not in link and _is_plain(link) else normalizeLinkText(link)


def parse_destination(string: str, pos: int, maximum: int) -> parse_link_destination._Result:
    """``parseLinkDestination`` with one regular expression for a plain destination: it
    ends at a space, a control character, a ')' or the end, as markdown-it's loop does."""
    match = _PLAIN_DESTINATION.match(string, pos, maximum)
    if match is None:
        return parse_link_destination.parseLinkDestination(string, pos, maximum)
    end = match.end()
    if end < maximum and string[end] in "\\(&<":
        return parse_link_destination.parseLinkDestination(string, pos, maximum)
    result = parse_link_destination._Result()
    result.ok = True
    result.pos = end
    result.str = match.group()
    return result


# [label](destination), nothing else between the brackets and parentheses; the label is
# checked against the parser's own terminator characters below.
_PLAIN_LINK = re.compile(r"\[([^\[\]\n]+)\]\(([^\x00-\x20\x7f\\()&<]+)\)")


def plain_link(state: StateInline, silent: bool) -> bool:
    """markdown-it's link rule for the commonest link, ``[some words](https://host/path)``,
    without scanning the label token by token and tokenizing it again.

    It takes only links whose label is plain text (no character at which any inline rule
    could start, so markdown-it's label scan and tokenizer would make it one text token)
    and whose destination is a plain URL with nothing after it; the tokens it makes are
    the link rule's: link_open with the href, the label as pending text, link_close.
    Anything else is left to the link rule that runs next.
    """
    match = _PLAIN_LINK.match(state.src, state.pos, state.posMax)
    if match is None:
        return False
    label_start, label_end = match.span(1)
    url = match[2]
    if (
        state.md.inline.terminator_re.search(state.src, label_start, label_end)
        or not _is_plain(url)
        or not state.md.validateLink(url)
        or state.md.options.get("store_labels", False)
    ):
        return False
    if not silent:
        token = state.push("link_open", "a", 1)
        token.attrs = {"href": url}
        state.linkLevel += 1
        state.append_pending(match[1])
        state.linkLevel -= 1
        state.push("link_close", "a", -1)
    state.pos = match.end()
    return True


def use_fast_links(md: MarkdownIt) -> MarkdownIt:
    """Install the fast paths on one parser (markdown-it looks them up on the instance)."""
    md.inline.ruler.before("link", "plain_link", plain_link)
    md.normalizeLink = normalize_link  # type: ignore[method-assign]
    md.normalizeLinkText = normalize_link_text  # type: ignore[method-assign]
    md.helpers = SimpleNamespace(  # type: ignore[assignment]
        parseLinkDestination=parse_destination,
        parseLinkLabel=parse_link_label.parseLinkLabel,
        parseLinkTitle=parse_link_title.parseLinkTitle,
    )
    return md
