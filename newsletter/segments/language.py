"""The segment language: text in, a small tree out (no SQL here; see ``sql.py``).

A hand-written recursive-descent parser over a hand-written tokenizer (``lexer.py``):
the grammar is a dozen lines (docs/segments.md), every error names the 1-based position
and what was expected there, and the project takes no parsing library for it. Both run
in linear time over the text, which is bounded (``MAX_LENGTH``).

    expression := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expression ")" | condition
    condition  := FIELD OP value | ("clicked" | "opened") "within" N days
                | ("subscribed" | "confirmed") (OP "YYYY-MM-DD" | "within" N days)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from newsletter.errors import SegmentError
from newsletter.segments.lexer import Token, tokens

MAX_LENGTH = 4000
MAX_DEPTH = 50
STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")

# Field -> the operators it takes.
TEXT_OPS = ("==", "!=", "in", "contains")
ORDER_OPS = ("==", "!=", "<", "<=", ">", ">=")
FIELD_OPS: dict[str, tuple[str, ...]] = {
    "topics": ("contains", "in"),
    "status": ("==", "!=", "in"),
    "source": TEXT_OPS,
    "email": TEXT_OPS,
    "attributes": TEXT_OPS,
    "subscribed": (*ORDER_OPS, "within"),
    "confirmed": (*ORDER_OPS, "within"),
    "received": ORDER_OPS,
    "bounced_soft": ORDER_OPS,
    "clicked": ("within",),
    "opened": ("within",),
}
DATE_FIELDS = ("subscribed", "confirmed")
COUNT_FIELDS = ("received", "bounced_soft")

Value = str | int | dt.date | tuple[str, ...]


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Value  # days (int) for "within"
    key: str = ""  # the attribute's name, for field "attributes"
    # Where each value stands in the text (1-based), for errors found after parsing.
    positions: tuple[int, ...] = dataclasses.field(default=(), compare=False)


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Condition | Not | And | Or


def parse(text: str) -> Node:
    """The tree of ``text``; a :class:`SegmentError` names the position and what was
    expected there."""
    if len(text) > MAX_LENGTH:
        raise SegmentError(f"a segment is at most {MAX_LENGTH} characters long")
    if not text.strip():
        raise SegmentError("position 1: expected a condition, found nothing")
    return _Parser(list(tokens(text))).whole()


def topics_named(node: Node) -> dict[str, int]:
    """The topics a segment refers to, each with its first position in the text (the
    config checks that they exist)."""
    if isinstance(node, Condition):
        if node.field != "topics":
            return {}
        values = node.value if isinstance(node.value, tuple) else (str(node.value),)
        positions = node.positions or (0,) * len(values)  # a tree built by hand has none
        named: dict[str, int] = {}
        for topic, position in zip(values, positions, strict=True):
            named.setdefault(topic, position)
        return named
    items = (node.item,) if isinstance(node, Not) else node.items
    found: dict[str, int] = {}
    for item in items:
        for topic, position in topics_named(item).items():
            found.setdefault(topic, position)
    return found


def unknown_topic(node: Node, known: Sequence[str]) -> tuple[str, int] | None:
    """The first topic (by position) that ``known`` lacks, with its position."""
    unknown = sorted((p, t) for t, p in topics_named(node).items() if t not in known)
    if not unknown:
        return None
    position, topic = unknown[0]
    return topic, position


def _found(token: Token) -> str:
    return "end of input" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, items: list[Token]) -> None:
        self.items = items
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.items[self.at]

    def take(self) -> Token:
        token = self.items[self.at]
        self.at += 1
        return token

    def fail(self, expected: str) -> SegmentError:
        token = self.token
        return SegmentError(
            f"position {token.position}: expected {expected}, found {_found(token)}"
        )

    def is_word(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text.lower() in words

    def whole(self) -> Node:
        node = self.expression()
        if self.token.kind != "end":
            raise self.fail("'and', 'or' or the end")
        return node

    def expression(self) -> Node:
        items = [self.term()]
        while self.is_word("or"):
            self.take()
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self) -> Node:
        items = [self.factor()]
        while self.is_word("and"):
            self.take()
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"at most {MAX_DEPTH} levels of 'not' and parentheses; a condition")
        try:
            if self.is_word("not"):
                self.take()
                return Not(self.factor())
            if self.token.text == "(":
                self.take()
                node = self.expression()
                if self.token.text != ")":
                    raise self.fail("')'")
                self.take()
                return node
            return self.condition()
        finally:
            self.depth -= 1

    def condition(self) -> Node:
        token = self.token
        name = token.text.lower()
        if token.kind != "word" or name not in FIELD_OPS:
            raise self.fail("a field (" + ", ".join(FIELD_OPS) + ") or '(' or 'not'")
        self.take()
        key = self.attribute_key() if name == "attributes" else ""
        op = self.operator(name)
        if op == "within":
            return Condition(name, op, self.days())
        if op in ("in",):
            values, positions = self.text_list(name)
            return Condition(name, op, values, key, positions)
        if name in DATE_FIELDS:
            return Condition(name, op, self.date())
        if name in COUNT_FIELDS:
            if self.token.kind != "number":
                raise self.fail("a whole number")
            return Condition(name, op, int(self.take().value))
        position = self.token.position
        return Condition(name, op, self.text(name), key, (position,))

    def attribute_key(self) -> str:
        if self.token.text == ".":
            self.take()
            if self.token.kind != "word":
                raise self.fail("an attribute name after 'attributes.'")
            return self.take().text
        if self.token.text == "[":
            self.take()
            if self.token.kind != "string":
                raise self.fail('a "quoted" attribute name')
            token = self.take()
            key = str(token.value)
            if '"' in key or "\\" in key or not key:
                raise SegmentError(
                    f"position {token.position}: expected an attribute name without quotes "
                    f"or backslashes, found {token.text}"
                )
            if self.token.text != "]":
                raise self.fail("']'")
            self.take()
            return key
        raise self.fail("'.' and an attribute name (attributes.country)")

    def operator(self, name: str) -> str:
        allowed = FIELD_OPS[name]
        token = self.token
        op = token.text.lower() if token.kind in ("op", "word") else ""
        if op not in allowed:
            wanted = f"'{allowed[0]}'" if len(allowed) == 1 else f"one of {' '.join(allowed)}"
            raise self.fail(f"{wanted} after {name!r}")
        self.take()
        return op

    def days(self) -> int:
        if self.token.kind != "number":
            raise self.fail("a number of days")
        days = int(self.take().value)
        if not self.is_word("day", "days"):
            raise self.fail("'days'")
        self.take()
        return days

    def text(self, name: str) -> str:
        token = self.token
        if token.kind != "string":
            raise self.fail('a "quoted" value')
        self.take()
        value = str(token.value)
        if name == "status" and value not in STATUSES:
            raise SegmentError(
                f"position {token.position}: expected a status ({', '.join(STATUSES)}), "
                f"found {token.text}"
            )
        return value

    def text_list(self, name: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The quoted values of ``[...]`` and where each stands."""
        if self.token.text != "[":
            raise self.fail("'[' and a list of quoted values")
        self.take()
        positions = [self.token.position]
        values = [self.text(name)]
        while self.token.text == ",":
            self.take()
            positions.append(self.token.position)
            values.append(self.text(name))
        if self.token.text != "]":
            raise self.fail("',' or ']'")
        self.take()
        return tuple(values), tuple(positions)

    def date(self) -> dt.date:
        token = self.token
        if token.kind == "string":
            try:
                moment = dt.date.fromisoformat(str(token.value))
            except ValueError:
                moment = None
            if moment is not None and len(str(token.value)) == 10:
                self.take()
                return moment
        raise self.fail('a date as "YYYY-MM-DD"')
