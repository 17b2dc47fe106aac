"""A segment as given to a command or an issue: a saved segment's name in
newsletter.yaml, else an expression, parsed and checked against the config's topics."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsletter.errors import SegmentError
from newsletter.segments.language import FIELD_OPS, Node, parse, unknown_topic


@dataclass(frozen=True)
class Segment:
    """A segment as given: its name in newsletter.yaml ("" for an expression given
    directly), its text and its tree."""

    name: str
    expression: str
    tree: Node

    @property
    def label(self) -> str:
        return f"{self.name} ({self.expression})" if self.name else self.expression


_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def resolve(saved: Mapping[str, str], given: str, topics: Sequence[str] | None = None) -> Segment:
    """``given`` as a saved segment's name, else as an expression. A bare word that no
    segment has is an unknown name (not a field nobody compared with anything). With
    ``topics`` (the config's ids), a topic outside them is refused rather than matching
    nobody."""
    segment = _resolve(saved, given)
    unknown = unknown_topic(segment.tree, topics) if topics is not None else None
    if unknown is not None:
        topic, position = unknown
        raise SegmentError(
            f"segment {segment.name or segment.expression!r}: position {position}: unknown "
            f"topic {topic!r}; known topics: {', '.join(topics or ()) or 'none'}"
        )
    return segment


def _resolve(saved: Mapping[str, str], given: str) -> Segment:
    if given in saved:
        return Segment(given, saved[given], parse(saved[given]))
    if _NAME.match(given.strip()) and given.strip().lower() not in FIELD_OPS:
        known = ", ".join(sorted(saved)) or "none (add them under 'segments:')"
        raise SegmentError(
            f"unknown segment {given!r}; newsletter.yaml defines: {known}; "
            "or give an expression such as 'attributes.country == \"GB\"'"
        )
    try:
        return Segment("", given, parse(given))
    except SegmentError as error:
        raise SegmentError(f"segment {given!r}: {error}") from None
