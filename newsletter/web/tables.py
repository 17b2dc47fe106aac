"""The web app's own tables, created by migration 3 in ``newsletter/store/migrations.py``.

They live in the subscriber database, not in process memory, so that every process
serving the app (several waitress or gunicorn workers, or several machines on
PostgreSQL) shares one count of webhook events already handled and of requests made.
The migration keeps its own frozen copy of these definitions, as migrations should.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table
from sqlalchemy.engine import Engine

metadata = MetaData()

# One row per SendGrid ``sg_event_id`` already applied: SendGrid retries a whole
# batch when an answer is late or not 2xx, so the same event can arrive again.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(100), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

# Fixed-window counters. ``bucket`` is a SHA-256 of the scope and key, so neither the
# addresses typed into the forms nor client IPs are kept here in clear.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", String(64), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
)


def dialect_insert(engine: Engine, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support, for the two databases the store runs on."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
