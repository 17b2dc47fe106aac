"""``db copy --to URL``: everything into another database; ids never handed out again."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import StoreError
from newsletter.ops.copy import copy_database
from newsletter.store import open_store_url
from newsletter.store.migrations import MIGRATIONS
from tests.ops.conftest import contents, fill
from tests.store.databases import postgres_schema


def at(config: Config, database_url: str) -> Config:
    return config.model_copy(update={"database_url": database_url})


def test_a_copy_holds_every_row_of_every_table(config: Config, filled: tuple[str, str]) -> None:
    source, target = filled

    copied = copy_database(at(config, source), target)

    assert contents(target) == contents(source)
    assert sum(copied.loaded.rows.values()) == sum(map(len, contents(source).values()))


def test_ids_given_after_a_copy_are_above_every_copied_and_erased_id(
    config: Config, pair: tuple[str, str]
) -> None:
    source, target = pair
    store = open_store_url(source, config.topic_ids)
    kept = [store.add(f"kept{n}@example.org", source="cli").id for n in range(3)]
    erased = store.add("newest@example.org", source="cli").id  # the highest id given
    store.forget("newest@example.org")
    store.close()

    copy_database(at(config, source), target)

    copy = open_store_url(target, config.topic_ids)
    newcomer = copy.add("newcomer@example.org", source="cli")
    assert newcomer.id > max(*kept, erased)
    assert copy.holder(erased, None) is None
    copy.close()


def test_a_target_that_is_not_empty_is_refused_and_left_alone(
    config: Config, pair: tuple[str, str]
) -> None:
    source, target = pair
    open_store_url(source, config.topic_ids).close()
    other = open_store_url(target, config.topic_ids)
    other.add("someone@example.org", source="cli")

    with pytest.raises(StoreError, match="is not empty"):
        copy_database(at(config, source), target)

    assert other.find("someone@example.org") is not None
    other.close()


def test_a_database_is_not_copied_onto_itself(config: Config, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'news.db'}"

    with pytest.raises(StoreError, match="names the newsletter's own database"):
        copy_database(at(config, url), f"sqlite:///{tmp_path}/./news.db")


def test_the_command_prints_the_one_setting_to_change(
    config: Config,
    pair: tuple[str, str],
    runner: CliRunner,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = pair
    fill(config, source, runner)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", source)
    rows = sum(map(len, contents(source).values()))

    result = runner.invoke(cli, ["db", "copy", "--to", target])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Copied {rows:,} rows in {len(contents(source))} tables to {target} "
        f"(schema version {MIGRATIONS[-1].version}).",
        "Now point the newsletter at it; the one setting to change:",
        f"  NEWSLETTER_DATABASE_URL={target}   (where it is set now)",
    ]


def test_a_password_in_the_target_url_is_never_printed(
    config: Config, project: Path, runner: CliRunner, postgres_url: str, tmp_path: Path
) -> None:
    source = f"sqlite:///{tmp_path / 'news.db'}"
    (project / "newsletter.yaml").write_text(
        (project / "newsletter.yaml").read_text(encoding="utf-8") + f"database_url: {source}\n",
        encoding="utf-8",
    )
    open_store_url(source, config.topic_ids).close()
    with postgres_schema(postgres_url) as target:
        with_password = make_url(target).set(password="hunter2-not-to-be-seen")
        shown = with_password.render_as_string(hide_password=True)

        result = runner.invoke(
            cli, ["db", "copy", "--to", with_password.render_as_string(hide_password=False)]
        )

    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert result.output.splitlines()[-2:] == [
        f"  database_url: {shown}   (in newsletter.yaml)",
        "or set NEWSLETTER_DATABASE_URL (where a password belongs: the environment).",
    ]
