"""Migration 12's table: what each RSS-to-email digest has seen of its feed.

One row per digest (its name under ``automations:``): ``last_slot``, the time of the
last ``every:`` moment that was dealt with (a digest made, or no new posts); ``seen``,
the keys (guid, else link) of the posts already mailed, newest first and at most
:data:`SEEN_LIMIT`; ``last_error``, why the last try failed (the feed unreachable, not
a feed), kept until a try succeeds. A failed try leaves ``last_slot`` and ``seen`` as
they were, so the next run tries the same moment again.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, String, Table, Text

from newsletter.store.schema import UtcDateTime, metadata

SEEN_LIMIT = 500

automation_feeds = Table(
    "automation_feeds",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("feed", Text, nullable=False),
    # The moment the digest was first seen: posts published before it are never new.
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_slot", UtcDateTime, nullable=False),
    Column("seen", JSON, nullable=False),  # [key, ...], newest first
    Column("last_digest", Text),  # the issue file of the last digest
    Column("last_error", Text),
    Column("checked_at", UtcDateTime, nullable=False),
)
