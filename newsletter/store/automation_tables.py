"""Migration 11's tables: who entered the automations when, and their steps' campaigns.

- ``automation_entries``: one row per subscriber who became active by confirming a
  signup, by ``subscribers add`` (or a signup without confirmation), or by an import
  given ``--welcome``; ``entered_at`` is that moment, which every step's ``after:``
  counts from. Written in the same transaction as the status change (:func:`enter`),
  kept once (becoming active again, by resubscribing, is no new entry), deleted with
  the subscriber.
- ``automation_steps``: per (automation, step file) the moment ``run-due`` first saw
  the step (a step added later goes only to readers who have not passed its time by
  then) and ``through``: entries up to that moment were already considered, so a run
  with nobody due reads only the entries of the last moments.
- ``automation_campaigns``: the campaigns of each step, one per version of its file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Column, Connection, Engine, ForeignKey, Index, String, Table, select

from newsletter.store.addresses import address_key
from newsletter.store.bulk_plan import BulkOutcome, Candidate
from newsletter.store.schema import Id, UtcDateTime, campaigns, metadata, subscribers
from newsletter.store.subscriber_rows import insert_ignoring_duplicates

automation_entries = Table(
    "automation_entries",
    metadata,
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("entered_at", UtcDateTime, nullable=False),
    Column("how", String(16), nullable=False),  # confirmed, added, imported
)
Index(
    "ix_automation_entries_entered_at",
    automation_entries.c.entered_at,
    automation_entries.c.subscriber_id,
)

automation_steps = Table(
    "automation_steps",
    metadata,
    Column("automation", String(64), primary_key=True),
    Column("step", String(200), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("through", UtcDateTime, nullable=False),
)

automation_campaigns = Table(
    "automation_campaigns",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey(campaigns.c.id, ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("automation", String(64), nullable=False),
    Column("step", String(200), nullable=False),
)
Index(
    "ix_automation_campaigns_automation",
    automation_campaigns.c.automation,
    automation_campaigns.c.step,
)


def enter(
    connection: Connection, subscriber_ids: Sequence[int], when: dt.datetime, how: str
) -> None:
    """Record that these subscribers became active at ``when`` (once: a later entry of
    the same person changes nothing), in the caller's transaction."""
    insert_ignoring_duplicates(
        connection,
        automation_entries,
        [{"subscriber_id": id_, "entered_at": when, "how": how} for id_ in subscriber_ids],
    )


def enter_imported(
    connection: Connection,
    candidates: Sequence[Candidate],
    outcomes: Sequence[BulkOutcome],
    when: dt.datetime,
) -> None:
    """``subscribers import --welcome``: the rows of a chunk added as active enter."""
    keys = [
        address_key(candidate.email)
        for candidate, outcome in zip(candidates, outcomes, strict=True)
        if outcome == "added" and candidate.status == "active"
    ]
    for start in range(0, len(keys), 500):
        ids = connection.scalars(
            select(subscribers.c.id).where(
                subscribers.c.email_key.in_(keys[start : start + 500]),
                subscribers.c.status == "active",
            )
        ).all()
        enter(connection, ids, when, "imported")


def automation_campaign_ids(engine: Engine) -> set[int]:
    """The campaigns of automation steps (the public site leaves them out)."""
    with engine.connect() as connection:
        return set(connection.scalars(select(automation_campaigns.c.campaign_id)))
