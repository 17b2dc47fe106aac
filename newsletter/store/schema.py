"""The subscriber tables, as SQLAlchemy Core ``Table`` objects.

These describe the schema as the migrations leave it; migrations create tables
from them (``table.create(connection)``), so the two cannot drift for version 1.
A later migration that alters a table updates the ``Table`` here *and* appends a
step to :mod:`newsletter.store.migrations` that makes the same change.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from newsletter.models import SUBSCRIBER_STATUSES

# Constraint names are fixed so that later migrations can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def new_link_key() -> str:
    """A subscriber's link key: 64 random bits, URL-safe (11 characters)."""
    return secrets.token_urlsafe(8)


# SQLite only gives a rowid alias (and so autoincrement) to INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in Python, ``timestamptz`` on PostgreSQL, UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r}: the store keeps aware UTC times")
        moment = moment.astimezone(dt.UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)


schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True),
    # The address as validated (domain lowercased); `email_key` is its lowercase
    # form, so uniqueness is case-insensitive the same way on SQLite and PostgreSQL.
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    # Migration 13: jsonb on PostgreSQL, which reads a key without parsing the text
    # (a segment's attribute conditions over a million rows: half the time).
    Column(
        "attributes",
        JSON().with_variant(postgresql.JSONB(), "postgresql"),
        nullable=False,
        default=dict,
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The consent record (GDPR: be able to show when, where and from which IP).
    Column("source", Text, nullable=False),  # "cli", "web", "import:subscribers.csv", ...
    Column("opt_in_at", UtcDateTime, nullable=False),
    Column("opt_in_ip", String(45)),
    Column("confirmed_at", UtcDateTime),
    Column("confirmed_ip", String(45)),
    Column("unsubscribed_at", UtcDateTime),
    Column("unsubscribe_source", Text),
    Column("unsubscribe_reason", Text),
    # No foreign key: campaigns arrive in a later migration and may be pruned.
    Column("unsubscribe_campaign_id", BigInteger),
    # Migration 4. A random value signed into every link issued to this person, so a
    # link can only ever act on the row it was issued to; erasure deletes it with the
    # row. `legacy_links`: the row existed before links carried it, and its older
    # links (which carry only the id) keep working. See newsletter.tokens.
    Column("link_key", String(16), nullable=False, default=new_link_key),
    Column("legacy_links", Boolean, nullable=False, default=False, server_default=false()),
    # Migration 4. The person's consent was proven once (confirmed, or added or
    # imported as a subscriber): only then does "subscribe again" skip confirmation.
    Column("was_active", Boolean, nullable=False, default=False, server_default=false()),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{status}'" for status in SUBSCRIBER_STATUSES) + ")",
        name="status",
    ),
    # Migration 4: ids are never reused on SQLite either (PostgreSQL's sequence never
    # reuses them), so no row ever inherits an erased person's id.
    sqlite_autoincrement=True,
)
# Recipients are read in id order filtered by status: keep that an index range scan.
Index("ix_subscribers_status_id", subscribers.c.status, subscribers.c.id)

subscriber_topics = Table(
    "subscriber_topics",
    metadata,
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("topic", String(64), primary_key=True),
    # On SQLite, the primary key is the table: no separate rowid tree to maintain.
    sqlite_with_rowid=False,
)
Index("ix_subscriber_topics_topic", subscriber_topics.c.topic, subscriber_topics.c.subscriber_id)

# What happened to a subscriber and on whose behalf: the history behind the current
# status, shown by `subscribers show`. Deleted with the subscriber on erasure.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("ip", String(45)),
    Column("detail", JSON, nullable=False, default=dict),
)

# Erased addresses: only the SHA-256 of the normalised address is kept, so the
# address can be recognised (and refused) without being stored.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    sqlite_with_rowid=False,
)

# -- campaigns and the send ledger (migration 2, newsletter.send.ledger) ------------------

LEDGER_STATES = ("pending", "in_flight", "sent", "failed", "unknown", "skipped")

# One campaign per issue (its slug): sending the issue again resumes it.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("issue_path", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("topics", JSON, nullable=False),  # [] = every active subscriber
    Column("provider", String(32), nullable=False),
    Column("recipients", Integer, nullable=False),  # the size of the snapshot
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("last_error", Text),  # why the last run stopped early, if it did
    # The lease: the one process allowed to send this campaign, until it expires.
    Column("lease_owner", String(200)),
    Column("lease_expires_at", UtcDateTime),
)

# One row per (campaign, recipient), snapshotted when the campaign starts. No foreign
# key to subscribers: erasing a person deletes their subscriber row, and the ledger
# keeps only the bare id (no address), so the campaign's counts stay right.
ledger = Table(
    "ledger",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("subscriber_id", Id, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),  # hand-offs to a provider
    Column("message_id", String(255)),
    Column("error", Text),
    Column("sent_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    # Migration 14: the subject variant of a reader in a subject test's sample (1 = A),
    # NULL otherwise (newsletter.store.subject_tests).
    Column("variant", Integer),
    CheckConstraint(
        "state IN (" + ", ".join(f"'{state}'" for state in LEDGER_STATES) + ")",
        name="state",
    ),
)


# The ledger as migration 2 created it (a fresh database goes through the same steps as
# an old one): every column but ``variant``. Frozen: never change it.
_before_14 = MetaData(naming_convention=metadata.naming_convention)
Table("campaigns", _before_14, Column("id", Id, primary_key=True))  # the foreign key's target
ledger_before_14 = Table(
    "ledger",
    _before_14,
    Column("campaign_id", Id, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("subscriber_id", Id, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("message_id", String(255)),
    Column("error", Text),
    Column("sent_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(
        "state IN (" + ", ".join(f"'{state}'" for state in LEDGER_STATES) + ")",
        name="state",
    ),
)

# -- the web app's shared state (migration 3, newsletter.web) ------------------------
# In the database rather than in process memory, so that every process serving the
# app (several workers; several machines on PostgreSQL) sees the same counts.

# One row per SendGrid ``sg_event_id`` already applied: SendGrid retries a whole
# batch when the answer is late or not 2xx, so the same event can arrive again.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(100), primary_key=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
)

# Fixed one-hour windows of form requests. ``bucket`` is a SHA-256 of the scope and
# key, so neither the addresses typed into the forms nor client IPs are kept in clear.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", String(64), primary_key=True),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("hits", Integer, nullable=False),
)

# Opens and clicks per campaign, counted only when the editor turned SendGrid's
# tracking on (``sendgrid.tracking``). Totals only: who opened what is not kept.
campaign_engagement = Table(
    "campaign_engagement",
    metadata,
    Column("campaign_id", Id, primary_key=True, autoincrement=False),
    Column("event", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)


# -- mail coming back (migration 6, newsletter.send.mailbox; written by store/returns.py) ------

# One row per returned message already processed (SHA-256 of its Message-ID, or of its
# bytes): reading it again (POP3 cannot flag, a crash before flagging) changes nothing.
mailbox_messages = Table(
    "mailbox_messages",
    metadata,
    Column("message_key", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("processed_at", UtcDateTime, nullable=False),
)

# One row per (subscriber, campaign) that soft-bounced: bounces.soft_bounce_limit of
# them mark the subscriber bounced.
soft_bounces = Table(
    "soft_bounces",
    metadata,
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("campaign_id", Id, primary_key=True, autoincrement=False),  # 0: no campaign
    Column("at", UtcDateTime, nullable=False),
)

# Per campaign and provider, how many messages were handed over (newsletter status).
campaign_handovers = Table(
    "campaign_handovers",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey(campaigns.c.id, ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("provider", String(32), primary_key=True),
    Column("count", Integer, nullable=False),
)
