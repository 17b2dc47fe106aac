"""Migration 4: subscriber ids are never reused, and every link is bound to its person.

Before it, SQLite handed the id of the newest subscriber, once erased, to the next
signup (an ``INTEGER PRIMARY KEY`` without ``AUTOINCREMENT`` takes the largest id
plus one), and tokens carried only the id: an erased person's old links acted on the
newcomer. Now the SQLite table is rebuilt with ``AUTOINCREMENT`` (PostgreSQL's
sequence never gave an id twice), and each subscriber gets a random ``link_key`` that
every new token carries (see :mod:`newsletter.tokens`). Rows that exist when the
migration runs are marked ``legacy_links``: the links already in their mailboxes
carry no key and keep working for them, and for no row created later.

``was_active`` records that the person's consent was proven once, so that
"subscribe again" never turns a never-confirmed signup into a subscriber.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Index,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)

from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.store import schema
from newsletter.store.schema import Id, UtcDateTime, new_link_key

# The subscribers table as migration 1 created it (a fresh database goes through the
# same steps as an old one). Frozen: never change it.
_before_4 = MetaData(naming_convention=schema.metadata.naming_convention)
subscribers_before_4 = Table(
    "subscribers",
    _before_4,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("opt_in_at", UtcDateTime, nullable=False),
    Column("opt_in_ip", String(45)),
    Column("confirmed_at", UtcDateTime),
    Column("confirmed_ip", String(45)),
    Column("unsubscribed_at", UtcDateTime),
    Column("unsubscribe_source", Text),
    Column("unsubscribe_reason", Text),
    Column("unsubscribe_campaign_id", BigInteger),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{status}'" for status in SUBSCRIBER_STATUSES) + ")",
        name="status",
    ),
)
Index("ix_subscribers_status_id", subscribers_before_4.c.status, subscribers_before_4.c.id)

# Consent was proven for everyone but a signup that never confirmed: confirmed once,
# or added/imported by the editor (who vouches for the list), or bounced/complained
# (which only happens to people who were mailed).
_WAS_ACTIVE = (
    "status IN ('active', 'bounced', 'complained') OR confirmed_at IS NOT NULL "
    "OR (status = 'unsubscribed' AND source <> 'signup-form')"
)
_KEY_CHUNK = 5000


def migrate(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        _rebuild_sqlite(connection)
    else:
        connection.exec_driver_sql(
            "ALTER TABLE subscribers ADD COLUMN link_key VARCHAR(16) NOT NULL DEFAULT '', "
            "ADD COLUMN legacy_links BOOLEAN NOT NULL DEFAULT false, "
            "ADD COLUMN was_active BOOLEAN NOT NULL DEFAULT false"
        )
        connection.exec_driver_sql(
            f"UPDATE subscribers SET legacy_links = true, was_active = ({_WAS_ACTIVE})"
        )
        # The sequence never gives an id twice, but a restore or a hand-made row may
        # have left it behind the table: move it past every id, never back.
        # (On a fresh database, with no id given yet, the next one stays 1.)
        connection.exec_driver_sql(
            "WITH seq AS (SELECT pg_get_serial_sequence('subscribers', 'id') AS name), "
            "top AS (SELECT GREATEST((SELECT coalesce(max(id), 0) FROM subscribers), "
            "coalesce(pg_sequence_last_value((SELECT name FROM seq)), 0)) AS id) "
            "SELECT setval((SELECT name FROM seq), GREATEST(top.id, 1), top.id > 0) FROM top"
        )
    _assign_link_keys(connection)
    if connection.dialect.name == "postgresql":
        # New rows always get theirs from the program: an empty key is a bug.
        connection.exec_driver_sql("ALTER TABLE subscribers ALTER COLUMN link_key DROP DEFAULT")


def _rebuild_sqlite(connection: Connection) -> None:
    """SQLite cannot add AUTOINCREMENT to a table: the documented rebuild (foreign keys
    are off for this migration, so dropping the old table cascades to nothing, and
    ``legacy_alter_table`` keeps the other tables' references pointing at
    ``subscribers`` through the rename)."""
    columns = ", ".join(column.name for column in subscribers_before_4.columns)
    connection.exec_driver_sql("PRAGMA legacy_alter_table=ON")
    try:
        connection.exec_driver_sql("DROP INDEX ix_subscribers_status_id")
        connection.exec_driver_sql("ALTER TABLE subscribers RENAME TO subscribers_before_4")
        schema.subscribers.create(connection)
        connection.exec_driver_sql(
            f"INSERT INTO subscribers ({columns}, link_key, legacy_links, was_active) "
            f"SELECT {columns}, '', 1, ({_WAS_ACTIVE}) FROM subscribers_before_4 ORDER BY id"
        )
        connection.exec_driver_sql("DROP TABLE subscribers_before_4")
    finally:
        connection.exec_driver_sql("PRAGMA legacy_alter_table=OFF")


def _assign_link_keys(connection: Connection) -> None:
    subscribers = schema.subscribers
    set_key = (
        update(subscribers)
        .where(subscribers.c.id == bindparam("row_id"))
        .values(link_key=bindparam("key"))
    )
    last_id = 0
    while True:
        ids = connection.scalars(
            select(subscribers.c.id)
            .where(subscribers.c.id > last_id)
            .order_by(subscribers.c.id)
            .limit(_KEY_CHUNK)
        ).all()
        if not ids:
            return
        connection.execute(set_key, [{"row_id": id_, "key": new_link_key()} for id_ in ids])
        last_id = ids[-1]
