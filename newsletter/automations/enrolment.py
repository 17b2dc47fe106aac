"""Who is due for a step, read and added to its campaign in one ``INSERT ... SELECT``
(the rules are in :mod:`newsletter.automations.steps`): each step's row remembers how far
its entries were already considered, so a run with nobody due reads only the last
minutes' entries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, exists, literal, select, true, update

from newsletter.automations.sequences import Step
from newsletter.send import campaign_rows
from newsletter.send.campaign_rows import recipient_condition, write_connection
from newsletter.store import Store
from newsletter.store.automation_tables import (
    automation_campaigns,
    automation_entries,
    automation_steps,
)
from newsletter.store.database import insert_on_conflict
from newsletter.store.schema import campaigns, ledger, subscribers

# Entries are stamped before their transaction commits: a run that moved ``through``
# past a moment may not have seen an entry of that moment yet. Looking this far back
# again costs a few rows; the ledger's key keeps anyone from being added twice.
LATE_COMMIT_MARGIN = dt.timedelta(minutes=10)


def _this_step(step: Step) -> Any:
    return (automation_steps.c.automation == step.automation) & (
        automation_steps.c.step == step.key
    )


def _step_row(
    connection: Connection, step: Step, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """(started, considered through) of the step; the row is made on first sight and
    locked for this transaction on PostgreSQL (SQLite's write lock is already held)."""
    query = select(automation_steps.c.started_at, automation_steps.c.through).where(
        _this_step(step)
    )
    row = connection.execute(query.with_for_update()).one_or_none()
    if row is None:
        # The step exists since its file was written (or checked out), not only since
        # this run saw it: who became active in between is still before its time.
        written = dt.datetime.fromtimestamp(step.path.stat().st_mtime, dt.UTC)
        started_at = min(now, written)
        connection.execute(
            insert_on_conflict(connection, automation_steps)
            .values(
                automation=step.automation,
                step=step.key,
                started_at=started_at,
                through=started_at - step.after,
            )
            .on_conflict_do_nothing()
        )
        row = connection.execute(query.with_for_update()).one()
    return row.started_at, row.through


def due_readers(
    connection: Connection,
    step: Step,
    started_at: dt.datetime,
    through: dt.datetime,
    now: dt.datetime,
) -> Any:
    """The readers due for the step by ``now`` who had no version of it, as a SELECT."""
    since = max(through - LATE_COMMIT_MARGIN, started_at - step.after)
    versions = connection.scalars(
        select(automation_campaigns.c.campaign_id).where(
            automation_campaigns.c.automation == step.automation,
            automation_campaigns.c.step == step.key,
        )
    ).all()
    return _due_readers(step, since, now - step.after, list(versions))


def has_due(store: Store, step: Step, now: dt.datetime) -> bool:
    """Whether anyone is due for the step (cheap: an index range of recent entries)."""
    with write_connection(store.engine) as connection, connection.begin():
        started_at, through = _step_row(connection, step, now)
        due = due_readers(connection, step, started_at, through, now)
        return bool(connection.scalar(select(exists(due.limit(1)))))


def mark_considered(store: Store, step: Step, now: dt.datetime) -> None:
    """Nobody was due: the next run need not read these entries again."""
    with write_connection(store.engine) as connection, connection.begin():
        _started_at, through = _step_row(connection, step, now)
        if now - step.after > through:
            connection.execute(
                update(automation_steps).where(_this_step(step)).values(through=now - step.after)
            )


def enrol_due(store: Store, step: Step, campaign_id: int, now: dt.datetime) -> int:
    """Add the readers due for ``step`` by ``now`` to the campaign (pending); how many."""
    with write_connection(store.engine) as connection, connection.begin():
        started_at, through = _step_row(connection, step, now)
        due = due_readers(connection, step, started_at, through, now).subquery()
        rows = select(
            literal(campaign_id),
            due.c.subscriber_id,
            literal("pending"),
            literal(0),
            literal(campaign_rows.now(), type_=ledger.c.updated_at.type),
        ).where(true())  # SQLite reads "SELECT ... ON CONFLICT" only after a WHERE
        # RETURNING, to count them: psycopg gives no row count for INSERT ... SELECT.
        added = len(
            connection.execute(
                insert_on_conflict(connection, ledger)
                .from_select(
                    ["campaign_id", "subscriber_id", "state", "attempts", "updated_at"], rows
                )
                .on_conflict_do_nothing()
                .returning(ledger.c.subscriber_id)
            ).all()
        )
        if added:
            connection.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(recipients=campaigns.c.recipients + added, finished_at=None)
            )
        if now - step.after > through:
            connection.execute(
                update(automation_steps).where(_this_step(step)).values(through=now - step.after)
            )
    return added


def _due_readers(step: Step, since: dt.datetime, until: dt.datetime, versions: list[int]) -> Any:
    """``SELECT subscriber_id`` of readers due for the step who had none of ``versions``
    (its campaigns). The look-up names each campaign: the ledger's key is (campaign,
    subscriber), so a look-up by subscriber alone would read the whole index per reader."""
    due = (
        select(automation_entries.c.subscriber_id)
        .join(subscribers, subscribers.c.id == automation_entries.c.subscriber_id)
        .where(
            automation_entries.c.entered_at > since,
            automation_entries.c.entered_at <= until,
            recipient_condition(step.topics),
            subscribers.c.opt_in_at <= automation_entries.c.entered_at,
        )
    )
    for campaign_id in versions:
        due = due.where(
            ~exists().where(
                ledger.c.campaign_id == campaign_id,
                ledger.c.subscriber_id == automation_entries.c.subscriber_id,
            )
        )
    return due
