"""A segment's tree as one SQLAlchemy condition on ``subscribers`` (never string SQL).

The same condition selects the same rows on SQLite and PostgreSQL:

- every leaf is true or false, never NULL (a missing attribute or a reader never
  confirmed compares as "no"), so ``not`` is the plain complement;
- text compares byte for byte: ``contains`` is ``instr`` on SQLite and ``strpos`` on
  PostgreSQL (``LIKE`` ignores case on one and not on the other); ``email`` compares the
  lowercased address, so it ignores case on both;
- attributes are read with SQLAlchemy's JSON path (``json_extract`` / ``->>``) as text
  (PostgreSQL keeps them as ``jsonb`` since migration 13: a key is found without
  parsing the document);
- engagement is an ``IN (SELECT subscriber_id ...)`` over the engagement tables, a
  single pass over their recent rows (a semi-join; migration 13 indexes them by event
  and time), never a query per subscriber.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    false,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from newsletter.config import Config
from newsletter.segments.language import And, Condition, Node, Not, Or
from newsletter.segments.saved import Segment, resolve
from newsletter.store.engagement import readers_who
from newsletter.store.schema import ledger, soft_bounces, subscriber_topics, subscribers

COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Contains(FunctionElement[int]):
    """1-based position of the second text in the first, 0 if absent."""

    type = Integer()
    inherit_cache = True
    name = "position_in"


@compiles(_Contains)
def _contains_default(element: _Contains, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Contains, "postgresql")
def _contains_postgresql(element: _Contains, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def choose(config: Config, given: str) -> Segment:
    """The segment ``given`` names (newsletter.yaml's ``segments:``) or spells out; a
    topic that newsletter.yaml does not define is refused rather than matching nobody."""
    return resolve(config.segments, given, config.topic_ids)


def segment_condition(node: Node, *, now: dt.datetime) -> ColumnElement[bool]:
    """The subscribers ``node`` selects, as a condition on ``subscribers``; ``now`` is
    the moment ``within N days`` counts back from."""
    if isinstance(node, Not):
        return not_(segment_condition(node.item, now=now))
    if isinstance(node, And):
        return and_(*(segment_condition(item, now=now) for item in node.items))
    if isinstance(node, Or):
        return or_(*(segment_condition(item, now=now) for item in node.items))
    return _leaf(node, now)


def _leaf(node: Condition, now: dt.datetime) -> ColumnElement[bool]:
    field = node.field
    if node.op == "!=":  # the complement of "==": a missing value differs from any
        return not_(_leaf(Condition(field, "==", node.value, node.key), now))
    if field == "topics":
        wanted = node.value if isinstance(node.value, tuple) else (str(node.value),)
        return subscribers.c.id.in_(
            select(subscriber_topics.c.subscriber_id).where(
                subscriber_topics.c.topic.in_(list(wanted))
            )
        )
    if field == "status":
        return _text(subscribers.c.status, node)
    if field == "source":
        return _text(subscribers.c.source, node)
    if field == "email":
        lowered = Condition(node.field, node.op, _lower(node.value))
        return _text(subscribers.c.email_key, lowered)
    if field == "attributes":
        # Read once per row, and false, not NULL, where the attribute is missing.
        value = subscribers.c.attributes[node.key].as_string()
        return func.coalesce(_text(value, node), false())
    if field in ("subscribed", "confirmed"):
        column = subscribers.c.opt_in_at if field == "subscribed" else subscribers.c.confirmed_at
        return _moment(column, node, now)
    if field in ("received", "bounced_soft"):
        return _count(node)
    return _engaged(node, now)


def _lower(value: Any) -> Any:
    return tuple(item.lower() for item in value) if isinstance(value, tuple) else value.lower()


def _text(column: ColumnElement[str], node: Condition) -> ColumnElement[bool]:
    value = node.value
    if node.op == "in":
        return column.in_(list(value) if isinstance(value, tuple) else [str(value)])
    if node.op == "contains":
        return _Contains(column, str(value)) > 0
    return column == str(value)


def _moment(column: Any, node: Condition, now: dt.datetime) -> ColumnElement[bool]:
    if node.op == "within":
        assert isinstance(node.value, int)
        return and_(column.is_not(None), column >= now - dt.timedelta(days=node.value))
    assert isinstance(node.value, dt.date)
    start = dt.datetime.combine(node.value, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    if node.op == "==":
        return and_(column.is_not(None), column >= start, column < end)
    bounds = {"<": column < start, "<=": column < end, ">": column >= end, ">=": column >= start}
    return and_(column.is_not(None), bounds[node.op])


def _count(node: Condition) -> ColumnElement[bool]:
    """``received`` (ledger rows sent) or ``bounced_soft`` (soft bounces) compared with a
    number. Readers with none have no row to group: when 0 satisfies the comparison,
    the condition is "not among those whose count fails it"."""
    if node.field == "received":
        rows = select(ledger.c.subscriber_id).where(ledger.c.state == "sent")
        key = ledger.c.subscriber_id
    else:
        rows = select(soft_bounces.c.subscriber_id)
        key = soft_bounces.c.subscriber_id
    compare = COMPARE[node.op]
    grouped = rows.group_by(key)
    if compare(0, node.value):
        return subscribers.c.id.not_in(grouped.having(not_(compare(func.count(), node.value))))
    return subscribers.c.id.in_(grouped.having(compare(func.count(), node.value)))


def _engaged(node: Condition, now: dt.datetime) -> ColumnElement[bool]:
    """``clicked`` / ``opened within N days``: wherever the reader's first click or open
    was recorded (first-party links and pixel, a provider's events)."""
    assert isinstance(node.value, int)
    since = now - dt.timedelta(days=node.value)
    event = "click" if node.field == "clicked" else "open"
    return subscribers.c.id.in_(readers_who(event, since=since))
