"""``newsletter automations``: each sequence, its steps, who is in it, what is due and sent;
each digest, when it is next due and what it last did."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, or_, select, union

from newsletter.automations.digest_state import digest_settings, find_state, parse_every_setting
from newsletter.automations.enrolment import due_readers
from newsletter.automations.sequences import Sequence, Step, describe_after, read_sequences
from newsletter.automations.steps import system_clock
from newsletter.config import Config
from newsletter.send.campaign_rows import recipient_condition
from newsletter.store import Store, open_store
from newsletter.store.automation_tables import (
    automation_campaigns,
    automation_entries,
    automation_steps,
)
from newsletter.store.schema import LEDGER_STATES, ledger, subscribers


@dataclass(frozen=True)
class StepOverview:
    step: str  # the file's stem
    path: str
    after: str  # "3 days"
    topics: list[str]
    due_now: int  # readers the next run-due adds to it
    waiting: int  # added, not yet handed over (pending)
    states: dict[str, int]  # the ledger over every version of the step
    versions: int  # campaigns (one per version of the file that was sent)

    @property
    def sent(self) -> int:
        return self.states["sent"]


@dataclass(frozen=True)
class SequenceOverview:
    name: str
    path: str
    topics: list[str]
    in_it: int  # active readers who entered and have a step still ahead (or due, unsent)
    entered: int  # active readers who ever entered (of the sequence's topics)
    steps: list[StepOverview] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for step, shown in zip(self.steps, data["steps"], strict=True):
            shown["sent"] = step.sent
        return data


def overview(config: Config, *, clock: Any = system_clock) -> list[SequenceOverview]:
    """Every configured sequence as it stands now (read only: nothing is sent or added)."""
    sequences = read_sequences(config)
    now = clock()
    store = open_store(config)
    try:
        return [_sequence(store, sequence, now) for sequence in sequences]
    finally:
        store.close()


def _sequence(store: Store, sequence: Sequence, now: dt.datetime) -> SequenceOverview:
    last = max((step.after for step in sequence.steps), default=dt.timedelta(0))
    with store.engine.connect() as connection:
        steps = [_step(connection, step, now) for step in sequence.steps]
        entries = (
            select(func.count())
            .select_from(automation_entries)
            .join(subscribers, subscribers.c.id == automation_entries.c.subscriber_id)
            .where(
                recipient_condition(sequence.topics),
                subscribers.c.opt_in_at <= automation_entries.c.entered_at,
            )
        )
        # Still ahead: the last step's time has not come, or a step is due now or
        # waiting in its campaign (run-due has not sent it yet).
        ahead: list[Any] = [automation_entries.c.entered_at > now - last]
        if steps:
            waiting = select(ledger.c.subscriber_id).where(
                ledger.c.campaign_id.in_([id_ for _, due, versions in steps for id_ in versions]),
                ledger.c.state == "pending",
            )
            behind = union(waiting, *(due for _, due, _ in steps)).subquery()
            ahead.append(automation_entries.c.subscriber_id.in_(select(behind.c.subscriber_id)))
        in_it = connection.scalar(entries.where(or_(*ahead))) or 0
        ever = connection.scalar(entries) or 0
    return SequenceOverview(
        name=sequence.name,
        path=str(sequence.folder),
        topics=list(sequence.topics),
        in_it=in_it,
        entered=ever,
        steps=[shown for shown, _, _ in steps],
    )


def _step(
    connection: Connection, step: Step, now: dt.datetime
) -> tuple[StepOverview, Any, list[int]]:
    """The step's figures, with who is due for it now (a SELECT) and its campaigns."""
    row = connection.execute(
        select(automation_steps.c.started_at, automation_steps.c.through).where(
            automation_steps.c.automation == step.automation,
            automation_steps.c.step == step.key,
        )
    ).one_or_none()
    if row is None:  # never seen by run-due: it starts when its file was written
        written = dt.datetime.fromtimestamp(step.path.stat().st_mtime, dt.UTC)
        started_at = min(now, written)
        row_through = started_at - step.after
    else:
        started_at, row_through = row.started_at, row.through
    due_select = due_readers(connection, step, started_at, row_through, now)
    due_now = connection.scalar(select(func.count()).select_from(due_select.subquery())) or 0
    versions = list(
        connection.scalars(
            select(automation_campaigns.c.campaign_id).where(
                automation_campaigns.c.automation == step.automation,
                automation_campaigns.c.step == step.key,
            )
        )
    )
    counted = connection.execute(
        select(ledger.c.state, func.count())
        .where(ledger.c.campaign_id.in_(versions))
        .group_by(ledger.c.state)
    ).all()
    found: dict[str, int] = {state: count for state, count in counted}
    states = {state: int(found.get(state, 0)) for state in LEDGER_STATES}
    shown = StepOverview(
        step=step.key,
        path=str(step.path),
        after=describe_after(step.after),
        topics=list(step.topics),
        due_now=due_now,
        waiting=states["pending"],
        states=states,
        versions=len(versions),
    )
    return shown, due_select, versions


@dataclass(frozen=True)
class DigestOverview:
    name: str
    feed: str
    every: str
    topics: list[str]
    approve: bool
    next_at: dt.datetime  # the next moment, in the config's time zone
    posts_mailed: int  # posts the digests so far held (kept for the last SEEN_LIMIT)
    last_digest: str | None  # its issue file
    last_error: str | None  # why the last try failed, until one succeeds

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["next_at"] = self.next_at.isoformat()
        return data


def digest_overview(config: Config, *, clock: Any = system_clock) -> list[DigestOverview]:
    """Every configured digest: when it is next due and what it last did (read only)."""
    chosen = digest_settings(config)
    if not chosen:
        return []
    zone = ZoneInfo(config.timezone)
    now = clock()
    store = open_store(config)
    try:
        found = []
        for name, settings in chosen.items():
            assert settings.feed is not None
            state = find_state(store, name)
            every = parse_every_setting(settings.every)
            waiting = state is None or every.last(now, zone) <= state.last_slot
            due = every.next(now, zone) if waiting else now  # else: the next run-due
            found.append(
                DigestOverview(
                    name=name,
                    feed=settings.feed,
                    every=settings.every,
                    topics=list(settings.topics),
                    approve=settings.approve,
                    next_at=due.astimezone(zone),
                    posts_mailed=len(state.seen) if state else 0,
                    last_digest=state.last_digest if state else None,
                    last_error=state.last_error if state else None,
                )
            )
        return found
    finally:
        store.close()
