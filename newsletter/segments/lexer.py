"""The segment language's tokenizer: the text of a segment as a stream of tokens (fields,
"quoted values", numbers, operators, punctuation), each with its 1-based position, in
linear time. Read by the parser in :mod:`newsletter.segments.language`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from newsletter.errors import SegmentError


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "string", "number", "op", "punct", "end"
    text: str
    value: str | int
    position: int  # 1-based


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>\d+(?![A-Za-z_]))
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


def tokens(text: str) -> Iterator[Token]:
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SegmentError(
                f"position {position + 1}: unexpected {text[position]!r}; expected a field, "
                'a "quoted value", a number, an operator or a parenthesis'
            )
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "string":
            yield Token(kind, raw, _ESCAPE.sub(r"\1", raw[1:-1]), position + 1)
        elif kind == "number":
            yield Token(kind, raw, int(raw), position + 1)
        elif kind != "space":
            yield Token(kind, raw, raw, position + 1)
        position = match.end()
    yield Token("end", "", "", len(text) + 1)
