"""The list as a whole, read from ``subscribers``: its size at the end of each week and
where its subscribers came from."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Date, Engine, cast, func, select

from newsletter.reports.figures import ListWeek
from newsletter.store.schema import subscribers


def _week(column: Any, dialect: str) -> Any:
    """The Monday (UTC) of the week of a timestamp column, as SQL."""
    if dialect == "postgresql":
        return cast(func.date_trunc("week", func.timezone("UTC", column)), Date)
    # SQLite keeps UTC text: 'weekday 0' moves to the next Sunday (or stays), -6 days
    # gives that week's Monday.
    return func.date(column, "weekday 0", "-6 days")


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def list_by_week(engine: Engine) -> list[ListWeek]:
    """Active, pending, unsubscribed, bounced and complained at the end of each week.

    Each subscriber is counted from the week it joined, as active from the week it
    confirmed (imported active subscribers: from joining), and in its current
    suppressed status from the week it got there (the opt-out time for unsubscribes,
    the last change for bounces and complaints). Erased subscribers are not counted.
    """
    dialect = engine.dialect.name
    joined = _week(subscribers.c.created_at, dialect)
    confirmed = _week(subscribers.c.confirmed_at, dialect)
    left_at = func.coalesce(subscribers.c.unsubscribed_at, subscribers.c.updated_at)
    left = _week(left_at, dialect)
    query = select(joined, confirmed, left, subscribers.c.status, func.count()).group_by(
        joined, confirmed, left, subscribers.c.status
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return []
    # Changes per week: (+1 pending when joining, pending -> active, active -> status).
    changes: dict[dt.date, Counter[str]] = defaultdict(Counter)
    for join_week, confirm_week, left_week, status, count in rows:
        join = _as_date(join_week)
        changes[join]["joined"] += count
        if status == "pending":
            changes[join]["pending"] += count
            continue
        # Added or imported as active: no confirmation time, active from joining.
        active_from = max(_as_date(confirm_week), join) if confirm_week is not None else join
        changes[join]["pending"] += count
        changes[active_from]["pending"] -= count
        changes[active_from]["active"] += count
        if status != "active":
            when = max(_as_date(left_week), active_from)
            changes[when]["active"] -= count
            changes[when][status] += count
    first, last = min(changes), max(changes)
    weeks = []
    running: Counter[str] = Counter()
    week = first
    while week <= last:
        running.update(changes.get(week, Counter()))
        weeks.append(
            ListWeek(
                week=week,
                active=running["active"],
                pending=running["pending"],
                unsubscribed=running["unsubscribed"],
                bounced=running["bounced"],
                complained=running["complained"],
                joined=changes.get(week, Counter())["joined"],
            )
        )
        week += dt.timedelta(days=7)
    return weeks


def subscriber_sources(engine: Engine) -> dict[str, int]:
    query = (
        select(subscribers.c.source, func.count())
        .group_by(subscribers.c.source)
        .order_by(func.count().desc(), subscribers.c.source)
    )
    with engine.connect() as connection:
        return {source: count for source, count in connection.execute(query)}
