"""Where CI promises every test (NEWSLETTER_REQUIRE_ALL_TESTS), no skip goes unseen."""

from __future__ import annotations

import pytest

SKIPPING = """
import shutil

import pytest


@pytest.mark.skipif(shutil.which("sh") is not None, reason="a tool is here after all")
def test_bare_skipif():
    pass


def test_bare_skip():
    pytest.skip("a part is missing")


def test_runs():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401")
    pytester.makepyfile(test_skipping=SKIPPING)
    return pytester


def test_a_bare_skip_fails_where_every_test_must_run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_REQUIRE_ALL_TESTS", "1")

    result = suite.runpytest_inprocess()

    result.assert_outcomes(passed=1, failed=1, errors=1)  # the skipif fails at set-up
    result.stdout.fnmatch_lines(
        [
            "skipped, but NEWSLETTER_REQUIRE_ALL_TESTS is set: a tool is here after all",
            "*",
            "skipped, but NEWSLETTER_REQUIRE_ALL_TESTS is set: a part is missing",
        ]
    )


def test_without_the_promise_a_skip_stays_a_skip(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_REQUIRE_ALL_TESTS", raising=False)  # CI sets it

    result = suite.runpytest_inprocess()

    result.assert_outcomes(passed=1, skipped=2)
