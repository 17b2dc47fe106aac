"""The queue of scheduled issues (table ``schedules``, one row per slug): an entry
queued, held with a note, or sent, and the writes that put it there.

:mod:`newsletter.send.schedule` sends what is due; :mod:`newsletter.send.schedule_cancel`
takes an entry off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update

from newsletter.config import Config
from newsletter.errors import NewsletterError, SendError
from newsletter.render.issues import read_issue
from newsletter.send import campaign_rows
from newsletter.send.ledger_batches import still_to_send
from newsletter.send.plan import SendPlan, campaign_topics, new_audience, send_segment
from newsletter.send.run_summary import SendSummary
from newsletter.send.schedule_times import Clock, issue_hash, system_clock
from newsletter.store import Store, open_store
from newsletter.store.scheduling import schedules


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
    # Who it goes to (filled in by list_schedule): who send would plan it for now, or
    # once its campaign started (a subject test's rest, a stopped send) who is still to
    # be sent, or once sent how many were handed over.
    audience: int | None = None

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


def scheduled_from_row(row: Any) -> Scheduled:
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
    return _queue(config, plan, send_at, zone=zone, note=None, now=now)


# The note of a subject test's rest in the queue.
REST_NOTE = (
    "the rest of a subject test: run-due picks the winner and sends it then "
    "('newsletter send ISSUE --pick A' decides now)"
)


def schedule_rest(config: Config, plan: SendPlan, rest_at: dt.datetime) -> Scheduled:
    """Queue the rest of a subject test whose sample went out: ``run-due`` decides the
    winner and sends it at ``rest_at`` (an entry the issue had is replaced: its sample
    went)."""
    return _queue(
        config, plan, rest_at, zone=config.timezone, note=REST_NOTE, now=campaign_rows.now()
    )


def _queue(
    config: Config,
    plan: SendPlan,
    send_at: dt.datetime,
    *,
    zone: str,
    note: str | None,
    now: dt.datetime,
) -> Scheduled:
    """The one write of a queued entry, an issue's or a subject test's rest: what run-due
    re-plans it from (the file and its hash, the provider, the topics), replacing the
    entry the slug had."""
    path = Path(plan.compiled.issue.path).resolve()
    values = {
        "slug": plan.slug,
        "issue_path": str(path),
        "send_at": send_at,
        "timezone": zone,
        "provider": plan.provider,
        "topics": list(plan.topics),
        "issue_hash": issue_hash(path),
        "state": "queued",
        "note": note,
        "created_at": now,
        "updated_at": now,
    }
    store = open_store(config)
    try:
        with campaign_rows.write_connection(store.engine) as connection, connection.begin():
            connection.execute(delete(schedules).where(schedules.c.slug == plan.slug))
            connection.execute(insert(schedules).values(**values))
        return find_entry(store, plan.slug) or _missing(plan.slug)
    finally:
        store.close()


def queue_rest(config: Config, plan: SendPlan, summary: SendSummary) -> Scheduled | None:
    """After a run of the plan, by ``send`` or ``run-due``: the rest of a subject test queued
    for its time when the run sent the sample and left the rest waiting for the winner
    (``summary.rest_at``). None when no rest waits, or for a dry run or a stopped one."""
    if summary.rest_at is None or summary.dry_run or summary.stopped:
        return None
    return schedule_rest(config, plan, summary.rest_at)


def queue_rest_if_lost(config: Config, plan: SendPlan, rest_at: dt.datetime) -> bool:
    """Queue the rest of a subject test whose sample went out when no entry waits for it
    (a ``send`` killed between its last batch and ``schedule_rest``); an entry that is
    queued or held is left as it is. True if it queued one."""
    store = open_store(config)
    try:
        entry = find_entry(store, plan.slug)
    finally:
        store.close()
    if entry is not None and entry.state != "sent":
        return False
    schedule_rest(config, plan, rest_at)
    return True


def _missing(slug: str) -> Scheduled:
    raise SendError(f"{slug}: the schedule entry vanished while it was written; try again")


def find_entry(store: Store, slug: str) -> Scheduled | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(schedules).where(schedules.c.slug == slug)).one_or_none()
    return None if row is None else scheduled_from_row(row)


def list_schedule(config: Config, *, include_sent: bool = False) -> list[Scheduled]:
    """What is queued or held (and sent, if asked), soonest first, with audience sizes."""
    store = open_store(config)
    try:
        query = select(schedules).order_by(schedules.c.send_at, schedules.c.slug)
        if not include_sent:
            query = query.where(schedules.c.state != "sent")
        with store.engine.connect() as connection:
            rows = connection.execute(query).all()
        entries = [scheduled_from_row(row) for row in rows]
        return [replace(entry, audience=_audience(config, store, entry)) for entry in entries]
    finally:
        store.close()


def _audience(config: Config, store: Store, entry: Scheduled) -> int | None:
    """Who the entry goes to, or went to: how many its campaign handed over once sent,
    who it has left once started (a campaign never takes anyone new), else who ``send``
    would plan it for now, its ``segment:`` included (None when the issue cannot be
    read: run-due holds it with the reason)."""
    campaign = campaign_rows.find_campaign(store, entry.slug)
    if entry.state == "sent":
        if campaign is None:
            return 0
        return campaign_rows.handed_over(campaign_rows.state_counts(store, campaign.id))
    if campaign is not None:
        return still_to_send(store, campaign.id)
    path = Path(entry.issue_path)
    try:
        issue = read_issue(path, topics=config.topic_ids)
        segment = send_segment(config, path, None, issue.segment)
        topics = campaign_topics(store, entry.topics, issue)  # as run-due plans it
    except NewsletterError:
        return None
    return new_audience(store, topics, segment).recipients


def update_entry(store: Store, slug: str, **values: Any) -> None:
    with campaign_rows.write_connection(store.engine) as connection, connection.begin():
        connection.execute(
            update(schedules)
            .where(schedules.c.slug == slug, schedules.c.state != "sent")
            .values(**values, updated_at=campaign_rows.now())
        )
