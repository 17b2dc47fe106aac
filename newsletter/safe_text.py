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
    return " ".join(_CONTROL.sub(" ", text).split())


def json_visible(json_text: str) -> str:
    """JSON text with DEL and the C1 controls written as ``\\u`` escapes too (JSON
    itself escapes only C0): the same data, safe to print."""
    return _NOT_ESCAPED_BY_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", json_text)


def visible(text: str) -> str:
    """``text`` safe to print: each control character written as an escape (``\\x1b``)."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)
