"""`newsletter check --links` requests every link (on a local web site here) and reports
the broken ones on their line; working ones are remembered between runs."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from tests.fakes.web import FakeWebSite, Page
from tests.render.test_cli_render import write_issue

OWN = "title: Garden notes\npreheader: What grew this month.\n"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broken_links_are_reported_with_their_line(runner: CliRunner, project: Path) -> None:
    pages = {
        "/ok": Page("fine"),
        "/no-head": Page("fine", allow_head=False),
        "/slow": Page("late", delay=1.5),
        "/plan.pdf": Page(b"%PDF", content_type="application/pdf"),
    }
    with FakeWebSite(pages) as site:
        dead = f"http://127.0.0.1:{closed_port()}/"
        issue = write_issue(
            project,
            OWN,
            f"See [this]({site.url}/ok) and [that]({site.url}/no-head).\n\n"
            f"A [gone page]({site.url}/gone) and [a slow one]({site.url}/slow).\n\n"
            f"[Download the plan]({site.url}/plan.pdf){{.button}}\n\n"
            f"And [a dead host]({dead}).\n",
        )
        result = runner.invoke(cli, ["check", "--links", "--timeout", "0.5", issue])

        assert result.exit_code == 1, result.output
        lines = result.output.splitlines()
        assert lines == [
            f"{issue}:7: error: broken link {site.url}/gone (404 Not Found)",
            f"{issue}:7: error: broken link {site.url}/slow (timed out after 0.5 s)",
            f"{issue}:11: error: broken link {dead} (cannot connect: Connection refused)",
        ]
        assert site.requests["/no-head"] == 2  # HEAD refused, then GET

        # Working links are remembered: a second check asks only about the broken ones.
        before = sum(site.requests.values())
        again = runner.invoke(cli, ["check", "--links", "--timeout", "0.5", issue])
        assert again.output.splitlines() == lines
        assert site.requests["/ok"] == 1 and site.requests["/plan.pdf"] == 1
        assert sum(site.requests.values()) - before == 2  # /gone and /slow again
        assert (project / "build" / ".cache" / "links.json").is_file()


def test_without_links_nothing_is_requested(runner: CliRunner, project: Path) -> None:
    with FakeWebSite({}) as site:
        issue = write_issue(project, OWN, f"See [this]({site.url}/gone).\n")
        result = runner.invoke(cli, ["check", issue])
        assert result.output == f"{issue}: ok\n"
        assert not site.requests
