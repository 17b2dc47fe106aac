"""Fixtures of the store suite, which runs on SQLite always and on PostgreSQL when
NEWSLETTER_TEST_POSTGRES_URL is set (each test in a fresh schema of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from newsletter.config import Config
from newsletter.store import Store, open_store_url

TOPICS = ("research", "stories", "events")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store_url(database_url, TOPICS)
    yield opened
    opened.close()


@pytest.fixture
def project_store(
    config: Config, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """The example project's store, on the parametrised database (for CLI tests)."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    opened = open_store_url(database_url, config.topic_ids)
    yield opened
    opened.close()
