"""``check`` and ``send`` warn about sender settings that cost deliverability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from newsletter.cli import cli
from tests.conftest import SEED_ISSUE
from tests.send.conftest import merge

NO_BOUNCES = (
    "newsletter.yaml: warning: bounces.address is not set, so SMTP mail goes out with the "
    "From address as its return path: bounces land there without a token, and 'newsletter "
    "mailbox' can never match them to a reader; set bounces.address (e.g. "
    "bounces@breastfeedingworld.example) to a mailbox that mailbox.url reads"
)
OTHER_DOMAIN = (
    "newsletter.yaml: warning: bounces.address is on mailer.example.net, From on "
    "breastfeedingworld.example: the return path's SPF does not align with From, so DMARC "
    "rests on DKIM alone; put bounces.address on breastfeedingworld.example (or a subdomain "
    "of it)"
)
HTTP_SITE = (
    "newsletter.yaml: warning: site_url is http://news.breastfeedingworld.example: one-click "
    "unsubscribe (RFC 8058) needs an https:// address, and Gmail and Yahoo want one-click "
    "from bulk senders; serve the web app over HTTPS and set site_url to it"
)


@pytest.fixture
def configure(project: Path) -> Callable[..., None]:
    def configure(**settings: Any) -> None:
        path = project / "newsletter.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(merge(data, settings)), encoding="utf-8")

    return configure


@pytest.mark.parametrize(
    ("settings", "warnings"),
    [
        ({"provider": "smtp"}, [NO_BOUNCES]),
        ({"bounces": {"address": "bounces@mailer.example.net"}}, [OTHER_DOMAIN]),
        ({"site_url": "http://news.breastfeedingworld.example"}, [HTTP_SITE]),
        (
            {"provider": "smtp", "site_url": "http://news.breastfeedingworld.example"},
            [NO_BOUNCES, HTTP_SITE],
        ),
        # Providers that bounce to a return path of their own never use bounces.address.
        *(
            ({"provider": provider, "bounces": {"address": "bounces@mailer.example.net"}}, [])
            for provider in ("sendgrid", "postmark", "mailgun", "ses")
        ),
        # On the From domain or a subdomain of it, SMTP with a return path: nothing to say.
        ({"provider": "smtp", "bounces": {"address": "b@returns.breastfeedingworld.example"}}, []),
    ],
)
def test_check_warns_once_about_the_senders_settings(
    runner: CliRunner,
    configure: Callable[..., None],
    settings: dict[str, Any],
    warnings: list[str],
) -> None:
    configure(**settings)

    result = runner.invoke(cli, ["check", SEED_ISSUE, SEED_ISSUE])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [*warnings, f"{SEED_ISSUE}: ok", f"{SEED_ISSUE}: ok"]


def test_send_shows_the_warnings_for_the_provider_it_sends_through(
    runner: CliRunner, configure: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret-key-for-the-warnings-0123456789")
    configure(site_url="http://news.breastfeedingworld.example")

    result = runner.invoke(cli, ["send", SEED_ISSUE, "--provider", "smtp", "--dry-run"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"Check:      {NO_BOUNCES}" in lines
    assert f"Check:      {HTTP_SITE}" in lines
    assert "Checks:     ok" not in lines
