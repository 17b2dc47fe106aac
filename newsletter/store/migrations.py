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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text
from sqlalchemy.exc import OperationalError

from newsletter.errors import StoreError
from newsletter.store import link_keys, schema
from newsletter.store.link_keys import subscribers_before_4 as _subscribers_before_4
from newsletter.store.mail_queue_table import mail_queue


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]
    # SQLite's way to rebuild a table that others refer to: foreign keys off for the
    # migration's transaction (dropping the old table would otherwise cascade), and
    # ``PRAGMA foreign_key_check`` before it commits.
    sqlite_foreign_keys_off: bool = False


def create_tables(connection: Connection, *tables: Table) -> None:
    """Create tables (and their indexes) as :mod:`newsletter.store.schema` defines them."""
    for table in tables:
        table.create(connection)


def _subscribers(connection: Connection) -> None:
    create_tables(
        connection,
        _subscribers_before_4,
        schema.subscriber_topics,
        schema.subscriber_events,
        schema.suppressions,
    )


def _campaigns(connection: Connection) -> None:
    create_tables(connection, schema.campaigns, schema.ledger_before_14)


def _web_state(connection: Connection) -> None:
    create_tables(connection, schema.webhook_events, schema.rate_limits, schema.campaign_engagement)


def _mail_queue(connection: Connection) -> None:
    create_tables(connection, mail_queue)


def _mail_returns(connection: Connection) -> None:
    create_tables(
        connection, schema.mailbox_messages, schema.soft_bounces, schema.campaign_handovers
    )


def _issue_snapshots(connection: Connection) -> None:
    from newsletter.store import snapshots

    create_tables(connection, snapshots.issue_snapshots)


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


def _engagement_by_subscriber(connection: Connection) -> None:
    # Imported here: the module adds its tables to the shared metadata on import.
    from newsletter.store import engagement

    create_tables(connection, engagement.engagement_by_subscriber, engagement.provider_link_clicks)


def _no_ledger_state_index_on_postgresql(connection: Connection) -> None:
    # Migration 8's index costs PostgreSQL more than it gives: the report's per-state
    # counts take the same 0.2 s over a million rows without it, and as long as it
    # exists no ledger update is a HOT update (an indexed column changes), which took
    # some 7% of SendGrid throughput. SQLite's report needs it, and there it costs little.
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP INDEX IF EXISTS ix_ledger_campaign_id_state"))


def _automations(connection: Connection) -> None:
    # Imported here: the module adds its tables to the shared metadata on import.
    from newsletter.store import automation_tables

    create_tables(
        connection,
        automation_tables.automation_entries,
        automation_tables.automation_steps,
        automation_tables.automation_campaigns,
    )


def _digests(connection: Connection) -> None:
    # Imported here: the module adds its table to the shared metadata on import.
    from newsletter.store import digest_tables

    create_tables(connection, digest_tables.automation_feeds)


def _segment_reads(connection: Connection) -> None:
    # Imported here: the modules add their tables to the shared metadata on import.
    from sqlalchemy.dialects import postgresql

    from newsletter.store import engagement, scheduling

    # A fresh database has them already: migrations 8 and 9 create these tables with
    # every index the metadata names.
    engagement.ENGAGEMENT_RECENT.create(connection, checkfirst=True)
    scheduling.LINK_CLICKS_RECENT.create(connection, checkfirst=True)
    if connection.dialect.name != "postgresql":
        return
    column = next(
        c for c in inspect(connection).get_columns("subscribers") if c["name"] == "attributes"
    )
    if not isinstance(column["type"], postgresql.JSONB):
        # Rewrites the table (11 s a million rows, load 12), under the migration's lock.
        connection.execute(
            text(
                "ALTER TABLE subscribers ALTER COLUMN attributes TYPE jsonb USING attributes::jsonb"
            )
        )


def _subject_tests(connection: Connection) -> None:
    # Imported here: the module adds its table to the shared metadata on import.
    from newsletter.store import subject_tests

    # A nullable column without a default: no table rewrite on either engine.
    connection.execute(text("ALTER TABLE ledger ADD COLUMN variant INTEGER"))
    create_tables(connection, subject_tests.subject_tests)


MIGRATIONS: list[Migration] = [
    Migration(1, "subscribers, topics, consent events and suppressions", _subscribers),
    Migration(2, "campaigns and the send ledger", _campaigns),
    Migration(3, "web app: webhook events seen, form rate limits, opens and clicks", _web_state),
    Migration(
        4,
        "subscribers: ids never reused, a link key per subscriber, consent proven once",
        link_keys.migrate,
        sqlite_foreign_keys_off=True,
    ),
    Migration(5, "durable queue of confirmation and manage-link mail", _mail_queue),
    Migration(
        6,
        "mail coming back: messages processed, soft bounces, hand-overs per provider",
        _mail_returns,
    ),
    Migration(7, "what each campaign sent: the public site's snapshots", _issue_snapshots),
    Migration(
        8,
        "scheduled issues, tracked links and clicks; the ledger indexed by state",
        _schedules_and_clicks,
    ),
    Migration(
        9,
        "unique opens and clicks per reader, SendGrid clicks per URL",
        _engagement_by_subscriber,
    ),
    Migration(
        10,
        "PostgreSQL: the ledger no longer indexed by state (sends pay, reports do not gain)",
        _no_ledger_state_index_on_postgresql,
    ),
    Migration(
        11,
        "automations: who entered when, each step's first run and its campaigns",
        _automations,
    ),
    Migration(12, "RSS-to-email digests: what each has seen of its feed", _digests),
    Migration(
        13,
        "segments: recent opens and clicks indexed; PostgreSQL keeps attributes as jsonb",
        _segment_reads,
    ),
    Migration(
        14,
        "subject tests: each sample reader's variant in the ledger, each test's subjects "
        "and winner",
        _subject_tests,
    ),
]

# Any constant works; it only has to be the same in every process of this application.
_ADVISORY_LOCK_KEY = 0x6E657773  # "news"


def current_version(engine: Engine) -> int:
    """The highest applied version; 0 for an empty database."""
    try:
        with engine.connect() as connection:
            return recorded_version(connection)
    except OperationalError as error:
        # The first contact with the database: a wrong path, host or password.
        url = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise StoreError(
            f"cannot open the database {url}: {reason}; check database_url in "
            "newsletter.yaml or NEWSLETTER_DATABASE_URL"
        ) from None


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
        with engine.connect() as connection, _foreign_keys_off(connection, migration):
            # Tells the SQLite begin hook (see newsletter.store.database) to take the
            # write lock at BEGIN, so two processes cannot both decide to migrate.
            connection.execution_options(write=True)
            with connection.begin():
                _lock(connection)
                known = recorded_version(connection)
                if migration.version <= known:
                    continue  # another process applied it while we waited for the lock
                migration.apply(connection)
                if migration.sqlite_foreign_keys_off and connection.dialect.name == "sqlite":
                    _check_foreign_keys(connection, migration)
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


def apply_within(
    connection: Connection, migrations: list[Migration], *, record: bool = True
) -> None:
    """Apply ``migrations`` in the caller's open transaction, so that they commit or roll
    back with everything else in it (a restore builds the schema, loads the rows and
    migrates them forward all at once). ``record=False`` leaves ``schema_version`` to the
    caller (a restore loads the backup's own record). On SQLite the caller turns foreign
    keys off first when a migration needs it, and checks them before committing."""
    _check_order(MIGRATIONS)
    _lock(connection)
    for migration in migrations:
        migration.apply(connection)
        if record:
            connection.execute(
                schema.schema_version.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=dt.datetime.now(dt.UTC),
                )
            )


@contextmanager
def _foreign_keys_off(connection: Connection, migration: Migration) -> Iterator[None]:
    """SQLite ignores ``PRAGMA foreign_keys`` inside a transaction: set it before BEGIN,
    on the DB-API connection (the SQLAlchemy one would begin first)."""
    driver = connection.connection.driver_connection
    if not (migration.sqlite_foreign_keys_off and connection.dialect.name == "sqlite"):
        yield
        return
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection, migration: Migration) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise StoreError(
            f"migration {migration.version} would leave {len(broken)} rows pointing at "
            f"nothing (first: {tuple(broken[0])}); nothing was changed"
        )


def _check_order(migrations: list[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migrations must be numbered 1, 2, 3, ... in order; got {versions}")


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Released with the transaction; waits while another process migrates.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    schema.schema_version.create(connection, checkfirst=True)


def recorded_version(connection: Connection) -> int:
    """The highest version applied, read in the caller's transaction; 0 for none."""
    if not inspect(connection).has_table(schema.schema_version.name):
        return 0
    version = connection.scalar(select(func.max(schema.schema_version.c.version)))
    return version or 0
