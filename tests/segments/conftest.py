"""The store fixtures of the store suite, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from tests.store.conftest import project_store, store

__all__ = ["project_store", "store"]
