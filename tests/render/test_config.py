"""newsletter.yaml: one schema, defaults in one place, secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError

MINIMAL = """\
name: Letters
from: {email: hello@example.org}
site_url: https://news.example.org/
postal_address: 1 Example Street, Springfield
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsletter.yaml"
    path.write_text(text)
    return path


def test_defaults_fill_in_everything_not_given(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site_url == "https://news.example.org"
    assert config.assets_base_url == "https://news.example.org/assets"
    assert config.database == f"sqlite:///{tmp_path.resolve()}/newsletter.db"
    assert config.provider == "outbox"
    assert config.outbox_dir == tmp_path.resolve() / "outbox"
    assert config.sendgrid.api_host == "https://api.sendgrid.com"
    assert config.sendgrid.api_key_env == "SENDGRID_API_KEY"
    assert config.sendgrid.tracking is False
    assert config.list_id_header == "Letters <letters.news.example.org>"


def test_relative_sqlite_url_is_beside_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "database_url: sqlite:///data/list.db\n"))
    assert config.database == f"sqlite:///{tmp_path.resolve()}/data/list.db"


def test_environment_overrides_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql+psycopg://db.internal/news")
    assert load_config(write(tmp_path, MINIMAL)).database == "postgresql+psycopg://db.internal/news"


def test_postal_address_is_required(tmp_path: Path) -> None:
    text = MINIMAL.replace("postal_address: 1 Example Street, Springfield\n", "")
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert error.value.problems == ["newsletter.yaml: postal_address: required; add this key"]


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    text = MINIMAL + (
        "brand: {primary_color: pink}\ntopics:\n  - {id: News, name: N}\n"
        "sendgrid: {batch_size: 5000, api_key: SG.secret}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert error.value.problems == [
        "newsletter.yaml: topics.0.id: must be lowercase letters, digits, '-' or '_'",
        "newsletter.yaml: brand.primary_color: must be a hex colour like #b0416f",
        "newsletter.yaml: sendgrid.batch_size: Input should be less than or equal to 1000",
        "newsletter.yaml: sendgrid.api_key: unknown key; check its spelling",
    ]
