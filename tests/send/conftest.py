"""Fixtures of the sending suite: the example project wired to real local servers.

- ``configure(**settings)``: rewrite the project's newsletter.yaml, return the config.
- ``subscribers(n)``: add n active subscribers of the seed issue's topic.
- ``shared_store``: the store on each database (SQLite, PostgreSQL), for subprocesses too.
- ``secret``: NEWSLETTER_SECRET_KEY set (sending for real refuses without it).
- ``sendgrid``: the fake SendGrid, with SENDGRID_API_KEY set to its key.
- ``smtp_server``: aiosmtpd recording what it receives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsletter.config import Config, load_config
from newsletter.store import Store, open_store
from newsletter.tokens import Signer
from tests.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.fakes.smtp import FakeSmtp

SECRET = "test-secret-key-for-sending-0123456789"
SEED = "issues/2026-11-26-stem-cells-in-breast-milk.md"
# Retries that take milliseconds, not minutes.
FAST_RETRIES = {"retries": 3, "retry_delay": 0.01, "retry_max_delay": 0.05}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def configure(project: Path) -> Callable[..., Config]:
    def configure(**settings: Any) -> Config:
        path = project / "newsletter.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data = merge(data, {"sending": FAST_RETRIES})
        path.write_text(yaml.safe_dump(merge(data, settings)), encoding="utf-8")
        return load_config(path)

    return configure


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Signer:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return Signer(SECRET)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = open_store(config)
    yield opened
    opened.close()


@pytest.fixture
def shared_store(
    database_url: str, config: Config, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """The store on SQLite and on PostgreSQL (``database_url``), shared with any
    ``newsletter`` subprocess the test starts (it inherits NEWSLETTER_DATABASE_URL)."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    opened = open_store(config)
    yield opened
    opened.close()


@pytest.fixture
def subscribers(store: Store) -> Callable[..., list[int]]:
    """Add ``count`` active subscribers (topic research, like the seed issue); their ids."""

    def add(count: int, *, topics: tuple[str, ...] = ("research",), start: int = 0) -> list[int]:
        return [
            store.add(f"reader{n}@example.org", name=f"Reader {n}", topics=topics).id
            for n in range(start, start + count)
        ]

    return add


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server
