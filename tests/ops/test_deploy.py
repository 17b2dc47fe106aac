"""``newsletter deploy systemd``: unit files systemd accepts, a Caddyfile Caddy accepts,
and never a secret in any of them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from tests.conftest import skip_or_fail

UNITS = [
    "newsletter-web.service",
    "newsletter-run-due.service",
    "newsletter-run-due.timer",
    "newsletter-mailbox.service",
    "newsletter-mailbox.timer",
    "newsletter-flush-mail.service",
    "newsletter-flush-mail.timer",
    "newsletter-backup.service",
    "newsletter-backup.timer",
]


@pytest.fixture
def server_folder(tmp_path: Path) -> Path:
    """A stand-in for /srv/news: its .venv is this test run's, so every ExecStart exists."""
    folder = tmp_path / "srv" / "news"
    folder.mkdir(parents=True)
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    if not (folder / ".venv" / "bin" / "gunicorn").exists():
        skip_or_fail("gunicorn is not installed (pip install 'newsletter[deploy]')")
    return folder


def deploy(runner: CliRunner, folder: Path, *options: str) -> tuple[int, str]:
    result = runner.invoke(
        cli,
        ["deploy", "systemd", "--dir", str(folder), "--user", "news", "--output", "review",
         *options],
    )  # fmt: skip
    return result.exit_code, result.output


def test_the_files_are_written_for_review(
    runner: CliRunner, project: Path, server_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "a-secret-that-must-never-be-written-0123")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.another-secret")

    code, output = deploy(runner, server_folder, "--domain", "news.example.org")

    assert code == 0, output
    written = sorted(path.name for path in (project / "review").iterdir())
    assert written == sorted([*UNITS, "Caddyfile", "newsletter.env.example"])
    assert output.splitlines()[-2:] == [
        "Note: newsletter.yaml has web.proxy_hops: 0; behind Caddy set it to 1, so the app "
        "sees the visitors' addresses.",
        "Review them, then install them as docs/deploy.md says.",
    ]
    everything = "".join(path.read_text() for path in (project / "review").iterdir())
    assert "a-secret-that-must-never" not in everything
    assert "SG.another" not in everything
    web = (project / "review" / "newsletter-web.service").read_text()
    assert f"ExecStart={server_folder}/.venv/bin/gunicorn --workers 4 --threads 4 " in web
    assert "EnvironmentFile=/etc/newsletter/newsletter.env" in web
    assert "access-log" not in web  # a request's path holds a reader's link token
    caddyfile = (project / "review" / "Caddyfile").read_text()
    assert "news.example.org {\n" in caddyfile
    assert "\treverse_proxy 127.0.0.1:8000\n" in caddyfile
    example = (project / "review" / "newsletter.env.example").read_text()
    assert "NEWSLETTER_SECRET_KEY=\n" in example
    assert "SENDGRID_API_KEY=\n" in example


def test_systemd_accepts_the_units(runner: CliRunner, project: Path, server_folder: Path) -> None:
    verify = shutil.which("systemd-analyze")
    if verify is None:
        skip_or_fail("systemd-analyze is not installed (apt-get install systemd)")
    assert deploy(runner, server_folder)[0] == 0

    checked = subprocess.run(
        [verify, "verify", *(str(project / "review" / unit) for unit in UNITS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    # verify exits 0 on a directive it ignores: every warning counts.
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


@pytest.mark.parametrize("domain", [["--domain", "news.example.org"], []])
def test_caddy_accepts_the_caddyfile(
    runner: CliRunner, project: Path, server_folder: Path, domain: list[str]
) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        skip_or_fail("Caddy is not installed (apt-get install caddy)")
    assert deploy(runner, server_folder, *domain)[0] == 0

    checked = subprocess.run(
        [caddy, "validate", "--config", str(project / "review" / "Caddyfile"),
         "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stderr
    assert "Valid configuration" in checked.stdout + checked.stderr
    assert "not formatted" not in checked.stderr  # as 'caddy fmt' writes it


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--dir", "srv/news"], "Error: --dir 'srv/news' must be an absolute path of letters, "
                                "digits and . _ / + -"),
        (["--dir", "/srv/news\nExecStartPre=/bin/evil"], "Error: --dir '/srv/news\\nExecStartPre"
                                                         "=/bin/evil' must be an absolute path "
                                                         "of letters, digits and . _ / + -"),
        (["--dir", "/srv/news", "--user", "News Letter"], "Error: --user 'News Letter' is not a "
                                                          "user name (lowercase letters, digits, "
                                                          "_ -)"),
        (["--dir", "/srv/news", "--domain", "news.example.org;evil"], "Error: --domain "
         "'news.example.org;evil' is not a host name like news.example.org"),
    ],
)  # fmt: skip
def test_a_value_that_could_smuggle_a_directive_is_refused(
    runner: CliRunner, project: Path, options: list[str], message: str
) -> None:
    arguments = ["deploy", "systemd", "--user", "news", *options]

    result = runner.invoke(cli, arguments)

    assert (result.exit_code, result.output.splitlines()[-1]) == (1, message)
    assert not (project / "deploy").exists()
