"""Every table of the schema, as the shared metadata describes it.

Tables are declared on :data:`newsletter.store.schema.metadata` by the module that owns
them (``schema.py``, ``mail_queue_table.py``, ``scheduling.py``, ...), and a module's
tables join the metadata when it is imported. Whatever needs *all* of them (a backup,
a restore, a copy to another database) asks here: every module of this package is
imported first, so a table that a new migration adds is included without a list to
keep in step.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import Table

import newsletter.store
from newsletter.store.schema import metadata

# Tables that belong to the database engine, not to the schema.
ENGINE_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})


def schema_tables() -> list[Table]:
    """The schema's tables, each after the tables it refers to (a safe order to load)."""
    for module in pkgutil.iter_modules(newsletter.store.__path__):
        importlib.import_module(f"newsletter.store.{module.name}")
    return list(metadata.sorted_tables)
