"""Per-recipient personalisation: fill the markers of a compiled issue.

The compile is the expensive step and happens once per issue; this is the cheap step
that happens once per recipient: a join over pre-split parts, no parsing, no regex.
"""

from __future__ import annotations

import re
from html import escape

from newsletter.models import PERSONAL_FIELDS, CompiledIssue, Personalization

_MARKER = re.compile(r"\[\[(html|text):(" + "|".join(PERSONAL_FIELDS) + r")\]\]")


def split_markers(template: str) -> list[str]:
    """``"a [[html:name]] b"`` -> ``["a ", "name", " b"]``: literals at even indexes."""
    parts = _MARKER.split(template)
    # re.split yields (literal, part, field, literal, ...); drop the part names.
    return [parts[0]] + [piece for i, piece in enumerate(parts[1:]) if i % 3 != 0]


def fill(parts: list[str], values: dict[str, str]) -> str:
    filled = parts.copy()
    for index in range(1, len(filled), 2):
        filled[index] = values[filled[index]]
    return "".join(filled)


class Personalizer:
    """Splits a compiled issue once; :meth:`render` is then cheap for each recipient."""

    def __init__(self, compiled: CompiledIssue) -> None:
        self.compiled = compiled
        self._html = split_markers(compiled.html)
        self._text = split_markers(compiled.text)

    def render(self, recipient: Personalization) -> tuple[str, str]:
        """The recipient's (html, text) parts."""
        values = recipient.values(self.compiled.greeting_fallback)
        html_values = {name: escape(value, quote=True) for name, value in values.items()}
        return fill(self._html, html_values), fill(self._text, values)
