"""Fixtures of the backup, restore and copy suite.

- ``pair``: (source URL, target URL), parametrised over both engines each side: every
  test that takes it runs SQLite -> SQLite, SQLite -> PostgreSQL, PostgreSQL ->
  SQLite and PostgreSQL -> PostgreSQL (the last three where PostgreSQL is available).
- ``filled``: the example project's database with something in every table, made by
  the real workflows where they are cheap (import, erasure, an opt-out, a campaign
  sent to the outbox) and a made-up row in each table still empty.
- ``contents(url)``: every row of every table, as Python values, to compare databases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, Table, func, insert, select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import open_store_url
from newsletter.store.database import make_engine
from newsletter.store.table_dump import column_kind
from newsletter.store.tables import schema_tables
from tests.conftest import SEED_ISSUE
from tests.store.databases import postgres_schema

SECRET = "test-secret-key-for-the-ops-suite-0123456789"
ERASED = "erased@example.org"
OPTED_OUT = "opted-out@example.org"

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
PAIRS = [
    pytest.param(("sqlite", "sqlite"), id="sqlite-to-sqlite"),
    pytest.param(("sqlite", "postgresql"), id="sqlite-to-postgresql", marks=pytest.mark.postgres),
    pytest.param(("postgresql", "sqlite"), id="postgresql-to-sqlite", marks=pytest.mark.postgres),
    pytest.param(
        ("postgresql", "postgresql"), id="postgresql-to-postgresql", marks=pytest.mark.postgres
    ),
]


def new_database(kind: str, folder: Path, name: str, stack: ExitStack, postgres: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder / f'{name}.db'}"
    return stack.enter_context(postgres_schema(postgres))


@pytest.fixture(params=PAIRS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    source, target = request.param
    postgres = ""
    if "postgresql" in (source, target):
        postgres = request.getfixturevalue("postgres_url")
    with ExitStack() as stack:
        yield (
            new_database(source, tmp_path, "source", stack, postgres),
            new_database(target, tmp_path, "target", stack, postgres),
        )


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return SECRET


def newsletter(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fill(config: Config, database_url: str, runner: CliRunner) -> None:
    """Something in every table of the database at ``database_url``."""
    env = {"NEWSLETTER_DATABASE_URL": database_url}
    store = open_store_url(database_url, config.topic_ids)
    try:
        store.add(ERASED, name="Erased Person", topics=("research",), source="cli")
        store.add(OPTED_OUT, name="Opted Out", topics=("research",), source="cli")
        newsletter_env(runner, env, "subscribers", "import", "subscribers.example.csv")
        newsletter_env(runner, env, "send", SEED_ISSUE, "--yes")
        opted_out = store.find(OPTED_OUT)
        assert opted_out is not None
        store.unsubscribe(opted_out.id, source="one-click", reason="too much mail", campaign_id=1)
        store.forget(ERASED)
    finally:
        store.close()
    engine = make_engine(database_url)
    try:
        for table in schema_tables():
            add_a_row_if_empty(engine, table)
    finally:
        engine.dispose()


def newsletter_env(runner: CliRunner, env: dict[str, str], *args: str) -> str:
    result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def add_a_row_if_empty(engine: Engine, table: Table) -> None:
    """A made-up row with a value of every kind, referring to rows that exist."""
    with engine.begin() as connection:
        if connection.scalar(select(func.count()).select_from(table)):
            return
        values: dict[str, Any] = {}
        for column in table.columns:
            if column is table.autoincrement_column:
                continue
            foreign = next(iter(column.foreign_keys), None)
            if foreign is not None:
                values[column.name] = connection.scalar(
                    select(func.min(foreign.column)).select_from(foreign.column.table)
                )
            else:
                value = _made_up(column_kind(table, column), column.name)
                length = getattr(column.type, "length", None)
                values[column.name] = value[:length] if isinstance(value, str) else value
        connection.execute(insert(table).values(values))


def _made_up(kind: str, name: str) -> Any:
    return {
        "boolean": True,
        "integer": 7,
        "float": 1.5,
        "datetime": dt.datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=dt.UTC),
        "date": dt.date(2026, 11, 26),
        "json": {"note": f"{name}: ünïcode ✓", "n": [1, 2.5, None, True]},
        "text": f"{name} 'quoted' \"twice\" \\ ✓",
    }[kind]


def contents(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order, as Python values."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row)
                    for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in schema_tables()
            }
    finally:
        engine.dispose()


@pytest.fixture
def filled(
    config: Config, pair: tuple[str, str], runner: CliRunner, secret: str
) -> tuple[str, str]:
    """``pair`` with its source filled: (source URL, target URL)."""
    fill(config, pair[0], runner)
    return pair
