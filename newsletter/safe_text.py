"""Control characters: never into a mail header, a stored name or a terminal.

A subject or a name is shown in mail clients and printed by the CLI. A raw control
character there can break a header (CR, LF), end a string early (NUL) or drive the
editor's terminal (ESC starts the sequences that recolour, retitle or rewrite it; C1
``\\x9b`` does the same on some terminals). Tab is left alone: it is whitespace.

Nothing from the package is imported here: this is the bottom of the import graph.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# Zero-width characters and bidirectional marks and overrides: invisible, yet they can
# make a stored name read as something else. Allowed in a subject (right-to-left text
# needs its marks); never kept in a stored name or value.
_INVISIBLE = "\u200b-\u200f\u202a-\u202e\u2066-\u2069"
_STORED_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_INVISIBLE}]")
_VALUE_CONTROL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]")
_LINE_BREAKS = re.compile("[\t\n\r]+")
_NOT_ESCAPED_BY_JSON = re.compile(r"[\x7f-\x9f]")


def first_control(text: str) -> str | None:
    """The first control character in ``text``, if any."""
    found = _CONTROL.search(text)
    return found.group() if found else None


def without_controls(text: str) -> str:
    """``text`` on one line: control characters become spaces, runs of whitespace one
    space, no space at either end (for names typed into forms and files)."""
    if text.isprintable():  # the common case, without the regular expression
        return " ".join(text.split())
    return " ".join(_STORED_CONTROL.sub(" ", text).split())


def clean_text(value: str) -> str:
    """A stored value (an attribute, a reason, a tag) without control or invisible
    characters: line breaks and tabs become spaces, other spacing is kept."""
    if value.isprintable():  # the common case, and much cheaper than the regexes
        return value
    return _VALUE_CONTROL.sub("", _LINE_BREAKS.sub(" ", value)).strip()


def json_visible(json_text: str) -> str:
    """JSON text with DEL and the C1 controls written as ``\\u`` escapes too (JSON
    itself escapes only C0): the same data, safe to print."""
    return _NOT_ESCAPED_BY_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", json_text)


def visible(text: str) -> str:
    """``text`` safe to print: each control character written as an escape (``\\x1b``)."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)
