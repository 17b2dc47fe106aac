"""A digest's settings and what it keeps between runs: when its moments are
(:class:`Every`, from ``every:``), which automations are digests, and its state in the
database (:class:`DigestState`: the last moment, the posts already mailed), read and
written. :mod:`newsletter.automations.digest` runs them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from newsletter.config import AutomationSettings, Config, parse_every
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.digest_tables import automation_feeds


@dataclass(frozen=True)
class Every:
    weekday: int | None  # 0 = Monday; None: every day
    at: dt.time

    def last(self, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        """The latest moment at or before ``now``, in UTC."""
        local = now.astimezone(zone)
        for back in range(8):
            day = local.date() - dt.timedelta(days=back)
            if self.weekday is not None and day.weekday() != self.weekday:
                continue
            moment = dt.datetime.combine(day, self.at, tzinfo=zone)
            if moment <= local:
                return moment.astimezone(dt.UTC)
        raise AssertionError("a weekly moment is always within eight days")  # pragma: no cover

    def next(self, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        """The first moment after ``now``, in UTC."""
        step = dt.timedelta(days=1 if self.weekday is None else 7)
        return (self.last(now, zone).astimezone(zone) + step).astimezone(dt.UTC)


def parse_every_setting(value: str) -> Every:
    """``every:`` as checked when the config was loaded."""
    weekday, at = parse_every(value)
    return Every(weekday, at)


def digest_settings(config: Config) -> dict[str, AutomationSettings]:
    return {name: a for name, a in config.automations.items() if a.feed is not None}


@dataclass(frozen=True)
class DigestState:
    name: str
    feed: str
    started_at: dt.datetime
    last_slot: dt.datetime
    seen: tuple[str, ...]
    last_digest: str | None
    last_error: str | None


def find_state(store: Store, name: str) -> DigestState | None:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(automation_feeds).where(automation_feeds.c.name == name)
        ).one_or_none()
    if row is None:
        return None
    return DigestState(
        row.name, row.feed, row.started_at, row.last_slot, tuple(row.seen), row.last_digest,
        row.last_error,
    )  # fmt: skip


def record_state(store: Store, name: str, **values: Any) -> None:
    with campaign_rows.write_connection(store.engine) as connection, connection.begin():
        connection.execute(
            update(automation_feeds).where(automation_feeds.c.name == name).values(**values)
        )
