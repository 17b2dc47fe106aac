"""Fixtures shared by the whole suite: small, real, and on 127.0.0.1 only.

- ``project``: a temporary copy of the example newsletter folder.
- ``config``: its loaded ``newsletter.yaml``.
- ``runner``: a click CliRunner whose working directory is the project.
- ``browser``: a real headless Chromium (Debian's), driven by Playwright.
- ``postgres_url``: the PostgreSQL database for tests, from NEWSLETTER_TEST_POSTGRES_URL.
- ``database_url``: parametrised: a fresh SQLite file, and a fresh PostgreSQL schema
  where PostgreSQL is available; every test that takes it runs on both.

Tests that need Chromium or PostgreSQL skip with a reason where they are missing; CI
sets NEWSLETTER_REQUIRE_ALL_TESTS=1 so that such a skip fails the run instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from newsletter.config import Config, load_config
from tests.store.databases import postgres_schema

ROOT = Path(__file__).resolve().parent.parent
SEED_ISSUE = "issues/2026-11-26-stem-cells-in-breast-milk.md"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def skip_or_fail(reason: str) -> NoReturn:
    """Skip where a real part is missing; fail instead where CI promises all of them."""
    if os.environ.get("NEWSLETTER_REQUIRE_ALL_TESTS"):
        pytest.fail(f"{reason} (NEWSLETTER_REQUIRE_ALL_TESTS is set)")
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Where CI promises every test, any skip fails, also one written without skip_or_fail
    (a bare ``skipif`` or ``pytest.skip``)."""
    report: pytest.TestReport = yield
    if report.skipped and os.environ.get("NEWSLETTER_REQUIRE_ALL_TESTS"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped, but NEWSLETTER_REQUIRE_ALL_TESTS is set: {reason}"
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test in a real browser needs Chromium and is slow (make test-fast leaves out
    # every one, so the fast loop never starts a browser).
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.chromium)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own settings must not leak into tests.
    for name in (
        "NEWSLETTER_DATABASE_URL",
        "NEWSLETTER_SECRET_KEY",
        "NEWSLETTER_CONFIG",
        "SENDGRID_API_KEY",
        "SMTP_PASSWORD",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "MAILBOX_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example newsletter: config, issues, images, templates, example CSV."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("newsletter.yaml", "issues", "templates", "subscribers.example.csv"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        elif source.exists():
            shutil.copy2(source, folder / name)
    return folder


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "newsletter.yaml")


@pytest.fixture
def runner(project: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(project)
    return CliRunner()


def chromium_executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium; skipped (with the reason) where it or Playwright is missing."""
    executable = chromium_executable()
    if executable is None:
        skip_or_fail("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL")
    if not url:
        skip_or_fail("NEWSLETTER_TEST_POSTGRES_URL is not set; no PostgreSQL to test against")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newsletter.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def on_both(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The project's store (``NEWSLETTER_DATABASE_URL``) on SQLite and on PostgreSQL, for
    every store the test and the ``newsletter`` processes it starts open."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url
