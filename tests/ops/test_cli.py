"""``newsletter db backup`` and ``db restore``: exact output, exact errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.store import open_store_url
from newsletter.store.migrations import MIGRATIONS
from tests.ops.conftest import contents

VERSION = MIGRATIONS[-1].version


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def listed(project: Path, runner: CliRunner) -> Path:
    """The example list imported into the project's own SQLite database."""
    code, output = run(runner, "subscribers", "import", "subscribers.example.csv")
    assert code == 0, output
    return project / "newsletter.db"


def test_backup_says_what_it_wrote(runner: CliRunner, listed: Path, project: Path) -> None:
    tables = contents(f"sqlite:///{listed}")

    code, output = run(runner, "db", "backup", "news.backup")

    lines = output.splitlines()
    assert code == 0
    assert lines[0] == (
        f"Backed up {sum(map(len, tables.values()))} rows in {len(tables)} tables "
        f"(schema version {VERSION}) to news.backup ({_size(project)})"
    )
    assert lines[1:] == [
        "  subscribers             35",
        "  suppressions             0",
        "  campaigns                0",
        "  ledger                   0",
    ]


def _size(project: Path) -> str:
    return f"{(project / 'news.backup').stat().st_size / 1000:.1f} KB"


def test_restore_into_another_database_and_refuse_a_full_one(
    runner: CliRunner, listed: Path, project: Path
) -> None:
    run(runner, "db", "backup", "news.backup")
    drill = f"sqlite:///{project / 'drill.db'}"

    code, output = run(
        runner, "db", "restore", "news.backup", env={"NEWSLETTER_DATABASE_URL": drill}
    )
    again_code, again = run(
        runner, "db", "restore", "news.backup", env={"NEWSLETTER_DATABASE_URL": drill}
    )

    assert code == 0, output
    assert output.startswith("Restored ")
    assert output.endswith(f"from news.backup into {drill} (schema version {VERSION})\n")
    assert again_code == 1
    assert again == (
        f"Error: the database {drill} is not empty (subscriber_events, subscriber_topics, "
        "subscribers hold rows); restore only into an empty database, or add --force to "
        "replace everything in it\n"
    )
    store = open_store_url(drill, ["research", "stories", "events"])
    assert store.counts()["status"]["active"] == 28
    store.close()


def test_restore_of_something_else_is_one_line(runner: CliRunner, project: Path) -> None:
    code, output = run(runner, "db", "restore", "subscribers.example.csv")

    assert code == 1
    assert output == (
        "Error: subscribers.example.csv is not a newsletter backup (see 'newsletter db backup')\n"
    )
