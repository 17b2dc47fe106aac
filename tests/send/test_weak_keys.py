"""Real mail is never signed with a key anyone can know or guess (issue 10, item 4)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.tokens import DEVELOPMENT_SECRET
from tests.fakes.smtp import FakeSmtp
from tests.send.conftest import SEED
from tests.send.test_smtp import smtp_config

WEAK_KEYS = [
    pytest.param(DEVELOPMENT_SECRET, "is the public development key", id="development"),
    pytest.param("x", "is too short (1 characters, at least 32 are needed)", id="one-character"),
    pytest.param("y" * 31, "is too short (31 characters", id="31-characters"),
]


@pytest.mark.parametrize(("key", "reason"), WEAK_KEYS)
def test_real_mail_refuses_a_weak_key_before_sending_anything(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    reason: str,
) -> None:
    smtp_config(configure, smtp_server)
    subscribers(2)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", key)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: NEWSLETTER_SECRET_KEY {reason}")
    assert "secrets.token_urlsafe(32)" in result.output
    assert len(result.output.splitlines()) == 1
    assert smtp_server.arrivals == []


def test_test_sends_may_use_the_development_key(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp_config(configure, smtp_server)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", DEVELOPMENT_SECRET)

    result = runner.invoke(cli, ["send", SEED, "--test", "editor@example.org"])

    assert result.exit_code == 0, result.output
    assert len(smtp_server.arrivals) == 1
