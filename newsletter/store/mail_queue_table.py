"""The ``mail_queue`` table (migration 5): mail a reader asked for, until it is sent.

Its own module (on the schema's metadata) so that the table and its migration travel
together. A row holds an address only until its message is sent (then it is deleted)
or given up on (kept, with the error, for the operator: ``newsletter flush-mail``).
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from newsletter.store.schema import Id, UtcDateTime, metadata

mail_queue = Table(
    "mail_queue",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("to_address", String(320), nullable=False),
    Column("subject", String(998), nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", UtcDateTime, nullable=False, index=True),
    # host:pid:random of the process sending it now, and until when that claim holds.
    Column("claimed_by", String(100)),
    Column("claimed_until", UtcDateTime),
    Column("last_error", Text),
    Column("failed_at", UtcDateTime),  # given up: kept for the operator to see
)
