"""Scheduled sending: a queue of issues with a time, and the run that sends what is due.

``newsletter send ISSUE --at WHEN`` (or ``send_at:`` in the issue) plans and checks the
issue as for sending now, then queues it (:func:`schedule_issue`). :func:`run_due`
sends every queued issue whose time has come and returns; cron, a systemd timer or
``newsletter serve``'s background :class:`DueChecker` call it every minute.

Nothing here can send twice: :func:`run_due` goes through
:func:`newsletter.send.sending.send_campaign`, so the campaign ledger and its lease decide
who gets the issue. Two ``run-due`` at once: one holds the lease, the other finds it
held and leaves the campaign to it. A queued row is marked ``sent`` only once its
campaign has nobody left pending; until then each run resumes it.

The version that goes out is the version that was checked: the issue is rebuilt and
re-checked when it goes out, and if the file changed since it was scheduled the run
says so (in its log and in ``newsletter schedule``). Errors hold the issue with the
reason; each later run says it skipped it and why; scheduling it again (``send --at``)
replaces the held entry, and sending it by hand (``send``) marks it sent
(:func:`settle_after_send`).

Time comes from a ``clock`` argument (a function returning an aware datetime), so
tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, or_, select, update

from newsletter.config import Config, load_yaml_mapping
from newsletter.errors import NewsletterError, SendError
from newsletter.render.issues import split_front_matter
from newsletter.send import campaign_rows
from newsletter.send.campaign import INTERRUPTED, SendSummary
from newsletter.send.lease import owner_alive
from newsletter.send.plan import SendPlan, plan_send
from newsletter.send.sending import send_campaign
from newsletter.send.status import slug_of
from newsletter.store import Store, open_store
from newsletter.store.scheduling import schedules
from newsletter.store.schema import campaigns

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Say = Callable[[str], None]

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


@dataclass(frozen=True)
class Scheduled:
    """One entry of the queue."""

    slug: str
    issue_path: str
    send_at: dt.datetime  # UTC
    timezone: str
    provider: str
    topics: tuple[str, ...]
    issue_hash: str
    state: str  # queued, held, sent
    note: str | None
    audience: int | None = None  # active recipients now (filled in by list_schedule)

    @property
    def local_time(self) -> dt.datetime:
        return self.send_at.astimezone(ZoneInfo(self.timezone))

    def as_dict(self) -> dict[str, Any]:
        return {
            "issue": self.slug,
            "path": self.issue_path,
            "send_at": self.send_at.isoformat(),
            "local_time": self.local_time.isoformat(),
            "timezone": self.timezone,
            "provider": self.provider,
            "topics": list(self.topics),
            "state": self.state,
            "note": self.note,
            "audience": self.audience,
        }


def _scheduled(row: Any) -> Scheduled:
    return Scheduled(
        slug=row.slug,
        issue_path=row.issue_path,
        send_at=row.send_at,
        timezone=row.timezone,
        provider=row.provider,
        topics=tuple(row.topics),
        issue_hash=row.issue_hash,
        state=row.state,
        note=row.note,
    )


# Both ways: the time may come from --at or from the issue's own send_at.
_SEND_NOW = "without --at, and with --now if the issue has send_at"


def schedule_issue(
    config: Config,
    plan: SendPlan,
    send_at: dt.datetime,
    *,
    zone: str,
    clock: Clock = system_clock,
) -> Scheduled:
    """Queue the planned issue for ``send_at``, replacing an earlier entry for it.

    Refused: a plan with errors, a time that is not in the future, and an issue whose
    campaign already started (sending it again resumes that one).
    """
    issue = plan.compiled.issue
    now = clock()
    if send_at <= now:
        shown = send_at.astimezone(ZoneInfo(zone))
        raise SendError(
            f"{issue.path}: {shown:%Y-%m-%d %H:%M %Z} is in the past; give a later time, "
            f"or send it now: {_SEND_NOW}"
        )
    if plan.has_errors:
        errors = sum(finding.level == "error" for finding in plan.findings)
        raise SendError(
            f"{issue.path}: the pre-send checks found {errors} error(s); fix them (see "
            "'newsletter check') before scheduling"
        )
    if plan.campaign is not None:
        raise SendError(
            f"{issue.path}: its campaign {plan.campaign.id} already started; resume it "
            f"now: {_SEND_NOW}"
        )
    path = Path(issue.path).resolve()
    values = {
        "slug": plan.slug,
        "issue_path": str(path),
        "send_at": send_at,
        "timezone": zone,
        "provider": plan.provider,
        "topics": list(plan.topics),
        "issue_hash": issue_hash(path),
        "state": "queued",
        "note": None,
        "created_at": now,
        "updated_at": now,
    }
    store = open_store(config)
    try:
        with campaign_rows.write_connection(store.engine) as connection, connection.begin():
            connection.execute(delete(schedules).where(schedules.c.slug == plan.slug))
            connection.execute(insert(schedules).values(**values))
        return _find(store, plan.slug) or _missing(plan.slug)
    finally:
        store.close()


# The note of a subject test's rest in the queue.
REST_NOTE = (
    "the rest of a subject test: run-due picks the winner and sends it then "
    "('newsletter send ISSUE --pick A' decides now)"
)


def schedule_rest(config: Config, plan: SendPlan, rest_at: dt.datetime) -> Scheduled:
    """Queue the rest of a subject test whose sample went out: ``run-due`` decides the
    winner and sends it at ``rest_at`` (an entry the issue had is replaced: its sample
    went)."""
    path = Path(plan.compiled.issue.path).resolve()
    now = campaign_rows.now()
    values = {
        "slug": plan.slug,
        "issue_path": str(path),
        "send_at": rest_at,
        "timezone": config.timezone,
        "provider": plan.provider,
        "topics": list(plan.topics),
        "issue_hash": issue_hash(path),
        "state": "queued",
        "note": REST_NOTE,
        "created_at": now,
        "updated_at": now,
    }
    store = open_store(config)
    try:
        with campaign_rows.write_connection(store.engine) as connection, connection.begin():
            connection.execute(delete(schedules).where(schedules.c.slug == plan.slug))
            connection.execute(insert(schedules).values(**values))
        return _find(store, plan.slug) or _missing(plan.slug)
    finally:
        store.close()


def queue_rest_if_lost(config: Config, plan: SendPlan, rest_at: dt.datetime) -> bool:
    """Queue the rest of a subject test whose sample went out when no entry waits for it
    (a ``send`` killed between its last batch and ``schedule_rest``); an entry that is
    queued or held is left as it is. True if it queued one."""
    store = open_store(config)
    try:
        entry = _find(store, plan.slug)
    finally:
        store.close()
    if entry is not None and entry.state != "sent":
        return False
    schedule_rest(config, plan, rest_at)
    return True


def _missing(slug: str) -> Scheduled:
    raise SendError(f"{slug}: the schedule entry vanished while it was written; try again")


def _find(store: Store, slug: str) -> Scheduled | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(schedules).where(schedules.c.slug == slug)).one_or_none()
    return None if row is None else _scheduled(row)


def list_schedule(config: Config, *, include_sent: bool = False) -> list[Scheduled]:
    """What is queued or held (and sent, if asked), soonest first, with audience sizes."""
    store = open_store(config)
    try:
        query = select(schedules).order_by(schedules.c.send_at, schedules.c.slug)
        if not include_sent:
            query = query.where(schedules.c.state != "sent")
        with store.engine.connect() as connection:
            rows = connection.execute(query).all()
        entries = []
        for row in rows:
            entry = _scheduled(row)
            audience = campaign_rows.audience(store, entry.topics).recipients
            entries.append(replace(entry, audience=audience))
        return entries
    finally:
        store.close()


@dataclass(frozen=True)
class Cancellation:
    """What ``schedule cancel`` did, and what it means for a campaign already started."""

    entry: Scheduled  # as it was
    campaign_id: int | None  # its campaign, if it started
    counts: dict[str, int] | None  # that campaign's ledger, right after the cancel
    sender: str | None  # the process sending it right now: it stops before its next batch


def cancel(config: Config, issue: str) -> Cancellation:
    """Take ``issue`` (a file or its slug) off the queue.

    A send of it already running (``run-due``) asks before each batch whether its entry
    is still there (:func:`_schedule_cancelled`), so it stops before its next batch, says
    so, and leaves everyone not yet handed over ``pending``; ``newsletter send`` resumes
    the campaign. The :class:`Cancellation` says which of these applies.
    """
    slug = slug_of(issue)
    store = open_store(config)
    try:
        entry = _find(store, slug)
        if entry is None or entry.state == "sent":
            raise SendError(
                f"{issue}: nothing scheduled for it; 'newsletter schedule' lists what is"
            )
        with campaign_rows.write_connection(store.engine) as connection, connection.begin():
            connection.execute(
                delete(schedules).where(schedules.c.slug == slug, schedules.c.state != "sent")
            )
        campaign = campaign_rows.find_campaign(store, slug)
        if campaign is None:
            return Cancellation(entry, None, None, None)
        counts = campaign_rows.state_counts(store, campaign.id)
        return Cancellation(entry, campaign.id, counts, _lease_holder(store, slug))
    finally:
        store.close()


# The reason a scheduled send stops when its entry is cancelled while it runs.
CANCELLED = (
    "its schedule was cancelled ('newsletter schedule cancel'); everyone not yet sent "
    "stays pending: 'newsletter send' of the issue resumes it"
)


def _schedule_cancelled(store: Store, slug: str) -> Callable[[], str | None]:
    """Asked by the sender before each batch: :data:`CANCELLED` once the entry is gone."""

    def cancelled() -> str | None:
        with store.engine.connect() as connection:
            there = connection.scalar(select(schedules.c.slug).where(schedules.c.slug == slug))
        return None if there is not None else CANCELLED

    return cancelled


# -- running what is due ------------------------------------------------------------


@dataclass(frozen=True)
class DueResult:
    slug: str
    # sent, held, busy, stopped, skipped (held earlier), cancelled, sample (a subject
    # test's sample went out; its rest is queued for later)
    outcome: str
    message: str


def run_due(
    config: Config,
    *,
    clock: Clock = system_clock,
    say: Say | None = None,
    stopping: threading.Event | None = None,
) -> list[DueResult]:
    """Send every queued issue whose time has come; what became of each. Once
    ``stopping`` is set (Ctrl-C), the issue being sent stops before its next hand-over
    and stays queued, and no other issue starts."""
    tell = say or (lambda message: log.info("%s", message))
    # serve's checker runs every minute: a held issue was logged when it was held, and is
    # not logged again each minute (run-due, for cron's mail, says it every time).
    tell_skipped = say or (lambda message: log.debug("%s", message))
    now = clock()
    store = open_store(config)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(schedules)
                .where(
                    or_(
                        (schedules.c.state == "queued") & (schedules.c.send_at <= now),
                        schedules.c.state == "held",  # reported on every run until acted on
                    )
                )
                .order_by(schedules.c.send_at, schedules.c.slug)
            ).all()
        results = []
        for entry in map(_scheduled, rows):
            if stopping is not None and stopping.is_set():
                break  # what is left stays as it is for the next run
            if entry.state == "queued":
                results.append(_send_due(config, store, entry, tell, clock, stopping))
            else:
                results.append(_skip(entry, tell_skipped))
    finally:
        store.close()
    return results


def _send_due(
    config: Config,
    store: Store,
    entry: Scheduled,
    say: Say,
    clock: Clock,
    stopping: threading.Event | None,
) -> DueResult:
    path = Path(entry.issue_path)
    if not path.exists():
        return _hold(store, entry, f"the issue file {path} is gone", say)
    changed = issue_hash(path) != entry.issue_hash
    note = None
    if changed:
        note = "the issue changed after it was scheduled: rebuilt and re-checked"
        say(f"{entry.slug}: {note}")
    try:
        plan = plan_send(
            config,
            path,
            provider=entry.provider,
            topics=list(entry.topics) or None,
            now=clock(),
        )
    except NewsletterError as error:
        return _hold(store, entry, str(error), say)
    if plan.has_errors:
        errors = [finding for finding in plan.findings if finding.level == "error"]
        reason = f"the pre-send checks found {len(errors)} error(s): {errors[0]}"
        return _hold(store, entry, reason, say)
    if note:
        _update(store, entry.slug, note=f"{note} (checks ok)")
    say(f"{entry.slug}: sending to {plan.to_send()} recipient(s) through {plan.provider}")
    try:
        summary = send_campaign(
            config,
            plan,
            stopping=stopping,
            stop_when=_schedule_cancelled(store, entry.slug),
            clock=clock,
            notice=lambda message: say(f"{entry.slug}: {message}"),  # a wait, a retry
        )
    except SendError as error:
        holder = _lease_holder(store, entry.slug)
        if holder is not None:
            message = f"{entry.slug}: another process is sending it ({holder}); left to it"
            say(message)
            return DueResult(entry.slug, "busy", message)
        return _hold(store, entry, str(error), say)
    totals = summary.totals
    if summary.rest_at is not None and not summary.stopped:
        rest = schedule_rest(config, plan, summary.rest_at)
        message = (
            f"{entry.slug}: campaign {summary.campaign_id}: the subject test's sample went "
            f"out ({summary.sent} sent); the rest ({totals.get('pending', 0)}) get the "
            f"winner at {rest.local_time:%Y-%m-%d %H:%M %Z}"
        )
        say(message)
        return DueResult(entry.slug, "sample", message)
    if summary.stopped == CANCELLED:
        message = (
            f"{entry.slug}: stopped: {CANCELLED} (campaign {summary.campaign_id}: "
            f"{totals.get('sent', 0)} sent, {totals.get('pending', 0)} pending)"
        )
        say(message)
        return DueResult(entry.slug, "cancelled", message)
    if summary.stopped or totals.get("pending") or totals.get("in_flight"):
        reason = why_stopped(summary, "recipients are still pending")
        message = f"{entry.slug}: stopped ({reason}); the next run-due resumes it"
        _update(store, entry.slug, note=f"stopped: {reason}; the next run-due resumes it")
        say(message)
        return DueResult(entry.slug, "stopped", message)
    done = f"sent {totals['sent']}, failed {totals['failed']}, unknown {totals['unknown']}"
    _update(store, entry.slug, state="sent", note=f"{note + '; ' if note else ''}{done}")
    message = f"{entry.slug}: campaign {summary.campaign_id}: {done}"
    say(message)
    return DueResult(entry.slug, "sent", message)


def why_stopped(summary: SendSummary, otherwise: str) -> str:
    """Why a send of run-due's stopped, for its log: Ctrl-C in short (the next run-due,
    not ``send``, resumes it), else the provider's reason, else ``otherwise``."""
    if summary.stopped == INTERRUPTED:
        return "interrupted (Ctrl-C)"
    return summary.stopped or otherwise


def _skip(entry: Scheduled, say: Say) -> DueResult:
    """A held entry stays held until the editor acts; each run says so, and why."""
    message = (
        f"{entry.slug}: skipped, held (was due {entry.local_time:%Y-%m-%d %H:%M %Z}): "
        f"{entry.note}; fix it, then send it ('newsletter send {entry.issue_path} --now') "
        "or schedule it again (--at WHEN)"
    )
    say(message)
    return DueResult(entry.slug, "skipped", message)


def settle_after_send(config: Config, summary: SendSummary) -> Scheduled | None:
    """After ``newsletter send`` ran the issue's campaign by hand: a queued or held entry
    for it is marked ``sent`` once nobody is left pending, so that ``schedule`` no longer
    shows an old error and ``run-due`` does not wait for it. The entry as it was, or None
    when there was nothing to settle (no entry, or recipients still pending)."""
    totals = summary.totals
    if summary.dry_run or summary.stopped or totals.get("pending") or totals.get("in_flight"):
        return None
    store = open_store(config)
    try:
        entry = _find(store, summary.slug)
        if entry is None or entry.state == "sent":
            return None
        done = f"sent {totals['sent']}, failed {totals['failed']}, unknown {totals['unknown']}"
        _update(store, entry.slug, state="sent", note=f"sent with 'newsletter send': {done}")
        return entry
    finally:
        store.close()


def _hold(store: Store, entry: Scheduled, reason: str, say: Say) -> DueResult:
    _update(store, entry.slug, state="held", note=reason)
    message = f"{entry.slug}: held: {reason}"
    say(message)
    return DueResult(entry.slug, "held", message)


def _update(store: Store, slug: str, **values: Any) -> None:
    with campaign_rows.write_connection(store.engine) as connection, connection.begin():
        connection.execute(
            update(schedules)
            .where(schedules.c.slug == slug, schedules.c.state != "sent")
            .values(**values, updated_at=campaign_rows.now())
        )


def _lease_holder(store: Store, slug: str) -> str | None:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(campaigns.c.lease_owner, campaigns.c.lease_expires_at).where(
                campaigns.c.slug == slug
            )
        ).one_or_none()
    if row is None or row.lease_owner is None or row.lease_expires_at <= campaign_rows.now():
        return None
    if not owner_alive(row.lease_owner):  # a process on this host that is gone
        return None
    host, _, rest = row.lease_owner.partition(":")
    return f"process {rest.partition(':')[0]} on {host}"


class DueChecker:
    """``newsletter serve``'s background thread: :func:`run_due` every ``interval`` s."""

    def __init__(
        self,
        config: Config,
        *,
        interval: float = 60.0,
        clock: Clock = system_clock,
        also: tuple[Callable[..., object], ...] = (),
    ) -> None:
        self.config = config
        self.interval = interval
        self.clock = clock
        # More runs of the minute, called as ``run(config, clock=clock)`` after run_due
        # (the CLI passes the automations' run: this module cannot import it).
        self.also = also
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsletter-run-due", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.config, clock=self.clock)
            except Exception:  # a bad run must not end the web app's checks for good
                log.exception("checking for scheduled issues failed")
            for run in self.also:
                try:
                    run(self.config, clock=self.clock)
                except Exception:
                    log.exception("checking for due automation steps failed")
            self._stop.wait(self.interval)
