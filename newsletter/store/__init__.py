"""The subscriber store: SQLAlchemy Core over SQLite (default) or PostgreSQL.

``open_store(config)`` is the way in: it connects to ``config.database`` and brings
the schema up to date (see :mod:`newsletter.store.migrations`) before returning.
"""

from __future__ import annotations

from collections.abc import Sequence

from newsletter.config import Config
from newsletter.store.addresses import InvalidAddress, address_hash, normalize_address
from newsletter.store.database import make_engine
from newsletter.store.migrations import Migration, current_version, upgrade
from newsletter.store.subscribers import Added, Store

__all__ = [
    "Added",
    "InvalidAddress",
    "Store",
    "address_hash",
    "normalize_address",
    "open_store",
    "open_store_url",
    "upgrade_database",
]


def open_store(config: Config) -> Store:
    """The store of this newsletter, its schema created or migrated on first use."""
    return open_store_url(config.database, config.topic_ids)


def open_store_url(url: str, topics: Sequence[str]) -> Store:
    """A store on any SQLAlchemy URL (tests, tools); migrates like :func:`open_store`."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, topics)


def upgrade_database(config: Config) -> tuple[list[Migration], int]:
    """Apply pending migrations; the ones applied here and the schema version now."""
    engine = make_engine(config.database)
    try:
        applied = upgrade(engine)
        return applied, current_version(engine)
    finally:
        engine.dispose()
