"""Subscriber statuses: who may move from which status to which, and the one write
that obeys it.

Every status change goes through here, whichever path brings it: the person's own
acts (the web app, the CLI), what the mail system reports (SendGrid's webhook, the
return mailbox, an SMTP refusal) and an import. :data:`MOVES` is the whole rule:

- leaving ranks ``complained`` over ``bounced`` over ``unsubscribed``: a report may
  strengthen a suppression, never weaken it;
- nothing a provider, the mailbox or an import says brings anyone back; only the
  person's own act in the web app does (confirm, resubscribe, restart a signup).
- a policy block (a receiving server refusing the message or the sender, not the
  address: the mailbox's ``blocked``, SendGrid's ``type: blocked``) is no move at all;
  it fails that copy in the ledger (:mod:`newsletter.store.returns`) and nothing more.

The write is one conditional ``UPDATE ... WHERE id IN (...) AND status IN (the move's
sources)``. It never relies on a status read earlier: a bounce that was on its way while
a complaint committed finds no row to change (PostgreSQL re-checks the condition on the
row as the complaint left it; SQLite writers run one at a time), so two processes
racing on the same readers end at the strongest status either reported.

Leaving is set-based (:func:`change_statuses`: a few statements per call, whatever its
size), for paths that apply many reports at once; :func:`move` is one person's act.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, bindparam, insert, true, update

from newsletter.errors import StoreError
from newsletter.safe_text import clean_text
from newsletter.store.schema import subscriber_events, subscribers


class Move(NamedTuple):
    to: str
    sources: tuple[str, ...]  # the statuses it may leave
    only_if: ColumnElement[bool] = true()  # what else the row must show


# Who may move from which status to which; nothing else changes a status (adding and
# erasing create and delete rows). The last three are leaving, in rising precedence:
# each may overwrite those above it, none those below.
# fmt: off
MOVES: Mapping[str, Move] = MappingProxyType({
    # the person's own act      to              from
    "confirm":          Move("active",       ("pending",)),
    "resubscribe":      Move("active",       ("unsubscribed",), subscribers.c.was_active),
    "restart_signup":   Move("pending",      ("unsubscribed",), ~subscribers.c.was_active),
    # leaving: asked for, or reported by the mail system or an import
    "unsubscribe":      Move("unsubscribed", ("pending", "active")),
    "bounce":           Move("bounced",      ("pending", "active", "unsubscribed")),
    "complain":         Move("complained",   ("pending", "active", "unsubscribed", "bounced")),
})
# fmt: on
# ``resubscribe`` needs consent proven once (``was_active``: confirmed, or vouched for by
# the editor); without it, ``restart_signup`` asks for a confirmation like any signup.

# Leaving status -> its move, in the order of precedence (weakest first).
LEAVING: Mapping[str, str] = MappingProxyType(
    {"unsubscribed": "unsubscribe", "bounced": "bounce", "complained": "complain"}
)

_CHUNK = 500  # ids per IN (...) list: far below either database's parameter limit


class StatusChange(NamedTuple):
    """A subscriber leaving: asked for (unsubscribe) or reported (bounce, complaint)."""

    subscriber_id: int
    to: str  # "unsubscribed", "bounced" or "complained"
    source: str  # who says so, as the history shows it: "web", "sendgrid", "mailbox"...
    reason: str = ""  # in the reporter's words ("" = not given)
    campaign_id: int | None = None  # the campaign it came from, if known
    at: dt.datetime | None = None  # when it happened, if the report says (else now)
    unsubscribe_source: str | None = None  # the row's record, when not ``source``


def change_statuses(
    connection: Connection, changes: Iterable[StatusChange], *, when: dt.datetime | None = None
) -> list[StatusChange]:
    """Apply what :data:`MOVES` allows of ``changes`` in the caller's transaction, with a
    history event for each; the changes that took effect, in the order applied.

    A reason comes from strangers (a remote server's reply, a webhook, a returned
    message): it is kept without control characters, as everything printed must be.
    The first change per subscriber and status counts (a retried report). Changes are
    applied weakest first, so a stronger one in the same call overwrites a weaker one
    (both are in the history); a weaker one never overwrites a stronger status.
    """
    when = when or dt.datetime.now(dt.UTC)
    wanted: dict[str, dict[int, StatusChange]] = {to: {} for to in LEAVING}
    for change in changes:
        if change.to not in wanted:
            raise StoreError(
                f"a subscriber can only leave as {', '.join(LEAVING)}, not {change.to!r}"
            )
        if not change.reason.isprintable():
            change = change._replace(reason=clean_text(change.reason))
        wanted[change.to].setdefault(change.subscriber_id, change)
    applied: list[StatusChange] = []
    for to, act in LEAVING.items():
        by_id = wanted[to]
        if by_id:
            applied.extend(_leave(connection, act, by_id, when))
    if applied:
        connection.execute(insert(subscriber_events), [_event(c, when) for c in applied])
    return applied


def move(
    connection: Connection,
    subscriber_id: int,
    act: str,
    **values: Any,
) -> bool:
    """One person's act (a key of :data:`MOVES`) with the columns it sets besides the
    status; False if the subscriber's status (or row) does not allow it. No history
    event: the caller records its own, with the IP and source it knows."""
    return bool(_conditional_update(connection, act, [subscriber_id], values))


def _leave(
    connection: Connection, act: str, by_id: dict[int, StatusChange], when: dt.datetime
) -> list[StatusChange]:
    values: dict[str, Any] = {"updated_at": when}
    records: dict[int, dict[str, Any]] = {}
    if act == "unsubscribe":
        # An unsubscribe also records on the row when, by whom and why. The commonest
        # record goes into the conditional UPDATE itself; rows with another (an import
        # keeps each person's own time) are given theirs right after.
        records = {i: _unsubscribe_record(change, when) for i, change in by_id.items()}
        common = Counter(tuple(r.items()) for r in records.values()).most_common(1)[0][0]
        values |= dict(common)
    moved = set(_conditional_update(connection, act, sorted(by_id), values))
    others = [
        {"row_id": i, **records[i]}
        for i in sorted(moved & records.keys())
        if _differs(records[i], values)
    ]
    if others:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("row_id"), subscribers.c.status == "unsubscribed")
            .values({name: bindparam(name) for name in others[0] if name != "row_id"}),
            others,
        )
    return [change for i, change in by_id.items() if i in moved]


def _differs(record: dict[str, Any], values: dict[str, Any]) -> bool:
    return any(values.get(name) != value for name, value in record.items())


def _conditional_update(
    connection: Connection, act: str, ids: Sequence[int], values: dict[str, Any]
) -> list[int]:
    """The one write of a status: the ids among ``ids`` whose row the move changed."""
    step = MOVES[act]
    moved: list[int] = []
    for chunk in _chunks(ids):
        moved.extend(
            connection.execute(
                update(subscribers)
                .where(
                    subscribers.c.id.in_(chunk),
                    subscribers.c.status.in_(step.sources),
                    step.only_if,
                )
                .values(status=step.to, **values)
                .returning(subscribers.c.id)
            ).scalars()
        )
    return moved


def _unsubscribe_record(change: StatusChange, when: dt.datetime) -> dict[str, Any]:
    return {
        "unsubscribed_at": change.at or when,
        "unsubscribe_source": change.unsubscribe_source or change.source,
        "unsubscribe_reason": change.reason,
        "unsubscribe_campaign_id": change.campaign_id,
    }


def _event(change: StatusChange, when: dt.datetime) -> dict[str, Any]:
    detail: dict[str, Any] = {"reason": change.reason} if change.reason else {}
    if change.campaign_id is not None:
        detail["campaign_id"] = change.campaign_id
    return {
        "subscriber_id": change.subscriber_id,
        "at": change.at or when,
        "event": change.to,
        "source": change.source,
        "ip": None,
        "detail": detail,
    }


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
