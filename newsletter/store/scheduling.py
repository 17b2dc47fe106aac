"""Migration 8's tables: the schedule queue and first-party click counts.

They live here (on the shared metadata, like :mod:`newsletter.store.returns`) rather
than in :mod:`newsletter.store.schema`, so that a parallel branch's edits there do not
collide with these.

- ``schedules``: one row per issue (its slug) waiting to go out, or held, or sent.
  ``issue_hash`` is the SHA-256 of the issue file as it was checked when it was
  scheduled, so ``run-due`` can tell (and say) that it changed since.
- ``campaign_links``: the links of a campaign whose clicks are counted, numbered in
  the order they appear in the issue. The click token names (campaign, link); the
  redirect target is read from here, never from the request, so ``/c/`` is no open
  redirect.
- ``link_clicks_by_subscriber``: who clicked which link, kept only with
  ``tracking.per_subscriber`` (first click only).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text

from newsletter.store.schema import Id, UtcDateTime, metadata

# Raw SQL rather than an ``Index`` on ``schema.ledger``: attached to the table, it would
# also be created by migration 2 on a fresh database, and then again here.
LEDGER_STATE_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_ledger_campaign_id_state ON ledger (campaign_id, state)"
)

schedules = Table(
    "schedules",
    metadata,
    Column("slug", String(200), primary_key=True),
    Column("issue_path", Text, nullable=False),
    Column("send_at", UtcDateTime, nullable=False),
    Column("timezone", String(64), nullable=False),  # the zone the editor gave the time in
    Column("provider", String(32), nullable=False),
    Column("topics", JSON, nullable=False),  # [] = every active subscriber
    Column("issue_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("note", Text),  # why it is held, or what run-due noticed
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_schedules_state_send_at", schedules.c.state, schedules.c.send_at)

campaign_links = Table(
    "campaign_links",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("link", Integer, primary_key=True, autoincrement=False),
    Column("url", Text, nullable=False),
    Column("clicks", Integer, nullable=False, default=0),
)

link_clicks_by_subscriber = Table(
    "link_clicks_by_subscriber",
    metadata,
    Column("campaign_id", Id, primary_key=True, autoincrement=False),
    Column("link", Integer, primary_key=True, autoincrement=False),
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("at", UtcDateTime, nullable=False),
    sqlite_with_rowid=False,
)
# Migration 13: a segment's `clicked within N days` reads the recent clicks alone.
LINK_CLICKS_RECENT = Index(
    "ix_link_clicks_by_subscriber_at",
    link_clicks_by_subscriber.c.at,
    link_clicks_by_subscriber.c.subscriber_id,
)
