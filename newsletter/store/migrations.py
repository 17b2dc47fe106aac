"""The schema's history: an ordered list of migrations, applied once each.

Adding a migration is one entry at the end of :data:`MIGRATIONS`, with the next
version number and a function that receives an open connection inside the
migration's transaction::

    def _campaigns(connection: Connection) -> None:
        create_tables(connection, schema.campaigns, schema.ledger)

    MIGRATIONS = [..., Migration(2, "campaigns and the send ledger", _campaigns)]

Never edit or reorder a migration that has been released: databases out there
have recorded it as applied. Each migration runs in its own transaction together
with its row in ``schema_version``, so it is applied completely or not at all
(SQLite and PostgreSQL both have transactional DDL). Two processes starting at
once (two web workers, a worker and the CLI) are serialised by a lock: a
PostgreSQL advisory lock, or SQLite's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text
from sqlalchemy.exc import OperationalError

from newsletter.errors import StoreError
from newsletter.store import schema
from newsletter.store.mail_queue_table import mail_queue


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def create_tables(connection: Connection, *tables: Table) -> None:
    """Create tables (and their indexes) as :mod:`newsletter.store.schema` defines them."""
    for table in tables:
        table.create(connection)


def _subscribers(connection: Connection) -> None:
    create_tables(
        connection,
        schema.subscribers,
        schema.subscriber_topics,
        schema.subscriber_events,
        schema.suppressions,
    )


def _campaigns(connection: Connection) -> None:
    create_tables(connection, schema.campaigns, schema.ledger)


def _web_state(connection: Connection) -> None:
    create_tables(connection, schema.webhook_events, schema.rate_limits, schema.campaign_engagement)


def _reserved(connection: Connection) -> None:
    """Numbers 4, 6 and 8 belong to other branches of this release; when merging, replace
    these entries with those branches' migrations (these do nothing)."""


def _mail_queue(connection: Connection) -> None:
    create_tables(connection, mail_queue)


def _mail_returns(connection: Connection) -> None:
    create_tables(
        connection, schema.mailbox_messages, schema.soft_bounces, schema.campaign_handovers
    )


def _schedules_and_clicks(connection: Connection) -> None:
    # Imported here: the module adds its tables to the shared metadata on import.
    from newsletter.store import scheduling

    create_tables(
        connection,
        scheduling.schedules,
        scheduling.campaign_links,
        scheduling.link_clicks_by_subscriber,
    )
    # `newsletter report` counts every campaign's rows by state: read from this index
    # alone, a million-row ledger takes a tenth of the time of a table scan.
    connection.execute(text(scheduling.LEDGER_STATE_INDEX))


MIGRATIONS: list[Migration] = [
    Migration(1, "subscribers, topics, consent events and suppressions", _subscribers),
    Migration(2, "campaigns and the send ledger", _campaigns),
    Migration(3, "web app: webhook events seen, form rate limits, opens and clicks", _web_state),
    Migration(4, "(reserved for another branch: replace at merge)", _reserved),
    Migration(5, "durable queue of confirmation and manage-link mail", _mail_queue),
    Migration(6, "(reserved for another branch: replace at merge)", _reserved),
    Migration(
        7,
        "mail coming back: messages processed, soft bounces, hand-overs per provider",
        _mail_returns,
    ),
    Migration(8, "(reserved for another branch: replace at merge)", _reserved),
    Migration(9, "schedules, links of campaigns and their clicks", _schedules_and_clicks),
]

# Any constant works; it only has to be the same in every process of this application.
_ADVISORY_LOCK_KEY = 0x6E657773  # "news"


def current_version(engine: Engine) -> int:
    """The highest applied version; 0 for an empty database."""
    try:
        with engine.connect() as connection:
            return _recorded_version(connection)
    except OperationalError as error:
        # The first contact with the database: a wrong path, host or password.
        url = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise StoreError(
            f"cannot open the database {url}: {reason}; check database_url in "
            "newsletter.yaml or NEWSLETTER_DATABASE_URL"
        ) from None


def pending_migrations(
    engine: Engine, migrations: list[Migration] | None = None
) -> list[Migration]:
    version = current_version(engine)
    return [m for m in (migrations or MIGRATIONS) if m.version > version]


def upgrade(engine: Engine, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every migration not yet recorded, in order; return the ones applied here."""
    migrations = migrations or MIGRATIONS
    _check_order(migrations)
    latest = migrations[-1].version
    known = current_version(engine)
    if known > latest:
        raise StoreError(
            f"the database is at schema version {known}, newer than this program knows "
            f"({latest}); upgrade the newsletter package"
        )
    applied = []
    for migration in migrations:
        if migration.version <= known:
            continue
        with engine.connect() as connection:
            # Tells the SQLite begin hook (see newsletter.store.database) to take the
            # write lock at BEGIN, so two processes cannot both decide to migrate.
            connection.execution_options(write=True)
            with connection.begin():
                _lock(connection)
                known = _recorded_version(connection)
                if migration.version <= known:
                    continue  # another process applied it while we waited for the lock
                migration.apply(connection)
                connection.execute(
                    schema.schema_version.insert().values(
                        version=migration.version,
                        description=migration.description,
                        applied_at=dt.datetime.now(dt.UTC),
                    )
                )
                known = migration.version
                applied.append(migration)
    return applied


def _check_order(migrations: list[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations must be numbered 1, 2, 3, ... in order; got {versions}")


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Released with the transaction; waits while another process migrates.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    schema.schema_version.create(connection, checkfirst=True)


def _recorded_version(connection: Connection) -> int:
    if not inspect(connection).has_table(schema.schema_version.name):
        return 0
    version = connection.scalar(select(func.max(schema.schema_version.c.version)))
    return version or 0
