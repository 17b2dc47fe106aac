"""One corpus of segments on SQLite and PostgreSQL: the same readers each time, as the
reference evaluation in Python picks them."""

from __future__ import annotations

import pytest

from newsletter.segments.language import parse
from newsletter.segments.sql import segment_condition
from newsletter.store import Store, open_store_url
from tests.conftest import skip_or_fail
from tests.segments.readers import (
    NOW,
    TOPICS,
    Reader,
    make_readers,
    matches,
    selected_ids,
    write_readers,
)
from tests.store.databases import postgres_schema

CORPUS = [
    'attributes.country == "GB"',
    'attributes.country != "GB"',
    'attributes.country == ""',
    'attributes.country in ["GB", "FR"]',
    'attributes.country contains "b"',
    'attributes["First Name"] contains "n"',
    'attributes["First Name"] == "Zoë"',
    'attributes.plan == "pro" and attributes.country == "GB"',
    'not attributes.plan == "pro"',
    'attributes.nobody_has_this != "x" and status == "active"',
    'topics contains "research"',
    'topics in ["stories", "events"]',
    'not topics contains "research"',
    'status == "active"',
    'status != "active"',
    'status in ["bounced", "complained"]',
    'source == "web"',
    'source contains "import:"',
    'source contains "Substack"',
    'source in ["cli", "web"]',
    'email contains "EXAMPLE.ORG"',
    'email == "READER3@example.com" or email == "reader4@example.org"',
    'subscribed >= "2026-01-01"',
    'subscribed > "2026-01-01"',
    'subscribed < "2025-06-01"',
    'subscribed <= "2025-06-01"',
    'subscribed == "2024-10-13" or subscribed == "2024-10-14"',
    'subscribed != "2024-10-13" and status == "active"',
    "subscribed within 365 days",
    "confirmed within 300 days",
    "not confirmed within 300 days",
    'confirmed >= "2026-01-01"',
    'confirmed != "2024-10-14" and status == "pending"',
    'confirmed == "2024-11-04"',
    "clicked within 90 days",
    "not clicked within 90 days",
    "opened within 30 days",
    "received >= 3",
    "received == 0",
    "received < 2",
    "received != 1",
    "received > 0",
    "received <= 3",
    "bounced_soft >= 1",
    "bounced_soft == 0",
    "bounced_soft <= 1",
    '(attributes.country == "GB" or topics contains "events") and not status == "unsubscribed"',
    'attributes.country == "GB" and attributes.plan == "pro" and clicked within 90 days',
    "not (received >= 2 or opened within 30 days) and subscribed within 600 days",
    'status == "active" and (bounced_soft == 0 or not clicked within 60 days)',
]


def _reference(readers: list[Reader], expression: str) -> list[int]:
    tree = parse(expression)
    return sorted(reader.id for reader in readers if matches(tree, reader))


def _filled(url: str) -> tuple[Store, list[Reader]]:
    store = open_store_url(url, TOPICS)
    readers = make_readers()
    write_readers(store, readers)
    return store, readers


def test_the_database_picks_the_readers_the_reference_picks(database_url: str) -> None:
    store, readers = _filled(database_url)
    try:
        wrong = [
            expression
            for expression in CORPUS
            if selected_ids(store, segment_condition(parse(expression), now=NOW))
            != _reference(readers, expression)
        ]
    finally:
        store.close()
    assert wrong == []


def test_the_corpus_is_not_trivial() -> None:
    """Every expression picks some readers and leaves some out, so that a compiler
    returning everyone or no one fails the corpus."""
    readers = make_readers()
    for number, reader in enumerate(readers, start=1):
        reader.id = number
    for expression in CORPUS:
        chosen = _reference(readers, expression)
        assert 0 < len(chosen) < len(readers), expression


@pytest.mark.postgres
def test_sqlite_and_postgresql_pick_the_same_readers(tmp_path: object) -> None:
    import os
    from pathlib import Path

    url = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL")
    if not url:
        skip_or_fail("NEWSLETTER_TEST_POSTGRES_URL is not set; no PostgreSQL to test against")
    sqlite, _ = _filled(f"sqlite:///{Path(str(tmp_path)) / 'segments.db'}")
    with postgres_schema(url) as schema_url:
        postgresql, _ = _filled(schema_url)
        try:
            for expression in CORPUS:
                condition = segment_condition(parse(expression), now=NOW)
                assert selected_ids(sqlite, condition) == selected_ids(postgresql, condition), (
                    expression
                )
        finally:
            postgresql.close()
            sqlite.close()
