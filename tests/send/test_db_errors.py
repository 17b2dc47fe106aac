"""Database failures are one ``Error:`` line naming the database and what to do
(issue 11, item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from newsletter.cli import cli
from newsletter.store import open_store_url
from newsletter.store.db_errors import database_error
from tests.send.conftest import SEED


def read_only(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///file:{database_url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    url = make_url(database_url)
    options = f"{url.query['options']} -cdefault_transaction_read_only=on"
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


def test_a_read_only_database_is_one_error_line_for_adds_and_sends(
    runner: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch, secret: object
) -> None:
    store = open_store_url(database_url, ("research",))
    store.add("grace@example.org", topics=("research",))
    store.close()
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", read_only(database_url))

    added = runner.invoke(cli, ["subscribers", "add", "ada@example.org"])
    sent = runner.invoke(cli, ["send", SEED, "--yes"])

    for result in (added, sent):
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("Error: the database ") and " cannot be written; " in last
        assert "Traceback" not in result.output
    debug = runner.invoke(cli, ["--debug", "subscribers", "add", "ada@example.org"])
    assert isinstance(debug.exception, DBAPIError)  # --debug: the real thing


def test_a_full_disk_names_the_database_and_says_to_free_space(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _tiny(connection: object, _record: object) -> None:
        connection.execute("PRAGMA max_page_count = 2")  # type: ignore[attr-defined]

    with pytest.raises(OperationalError) as full, engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x)"))
        connection.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))

    message = str(database_error(full.value, f"sqlite:///{path}"))

    assert message.startswith(f"the database sqlite:///{path} is full; free some disk space")
    assert "(database or disk is full)" in message
