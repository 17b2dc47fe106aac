"""When a scheduled issue goes out: the times editors type (``--at``, ``send_at:``), read
in the configured time zone, and the clock every scheduled run takes its time from.

Time comes from a ``clock`` argument (a function returning an aware datetime), so
tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config import load_yaml_mapping
from newsletter.errors import SendError
from newsletter.render.front_matter import split_front_matter

Clock = Callable[[], dt.datetime]

# "tomorrow 9am", "today 17:30", "tomorrow 09:00": the one relative form editors type.
_RELATIVE = re.compile(
    r"(?P<day>today|tomorrow)\s+(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>am|pm)?",
    re.IGNORECASE,
)


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def time_zone(name: str, *, what: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SendError(
            f"{what}: unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'"
        ) from None


def parse_when(
    value: str | dt.datetime, zone: ZoneInfo, *, now: dt.datetime, what: str
) -> dt.datetime:
    """``value`` as an aware UTC time. A time without an offset is in ``zone``.

    Accepted: ISO 8601 (``2026-12-01T09:00+01:00``), a plain ``2026-12-01 09:00``, and
    ``today``/``tomorrow`` with a time (``tomorrow 9am``, ``today 17:30``).
    """
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = value.strip()
        relative = _RELATIVE.fullmatch(text)
        if relative:
            moment = _relative_time(relative, zone, now)
        else:
            try:
                moment = dt.datetime.fromisoformat(text)
            except ValueError:
                raise SendError(
                    f"{what}: cannot read {text!r} as a time; write it as "
                    "'2026-12-01 09:00' (in the configured timezone), "
                    "'2026-12-01T09:00+01:00' or 'tomorrow 9am'"
                ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


def _relative_time(match: re.Match[str], zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    hour = int(match["hour"])
    minute = int(match["minute"] or 0)
    half = (match["half"] or "").lower()
    if half:
        if not 1 <= hour <= 12:
            raise SendError(f"{match[0]!r}: with am/pm the hour is 1 to 12")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise SendError(f"{match[0]!r}: not a time of day")
    day = now.astimezone(zone).date()
    if match["day"].lower() == "tomorrow":
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def issue_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def front_matter_send_at(path: Path) -> dt.datetime | str | None:
    """The issue's ``send_at:``, as YAML gave it (None when it has none)."""
    front, _body, _line = split_front_matter(path, path.read_text(encoding="utf-8"))
    value = load_yaml_mapping(path, front, what="front matter").get("send_at")
    if value is None or isinstance(value, dt.datetime | str):
        return value
    if isinstance(value, dt.date):
        raise SendError(f"{path}: send_at: give a time as well as the date, e.g. '{value} 09:00'")
    raise SendError(f"{path}: send_at: write a time like '2026-12-01 09:00'")
