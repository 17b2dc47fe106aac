"""Confirmation mail survives the web server dying right after it answered (issue 11,
item 6): the letter is committed to the mail queue before the answer, and the next
server (or ``newsletter flush-mail``) sends it."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send.mail_queue import Letter, enqueue
from newsletter.store import open_store
from tests.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.web.conftest import SECRET
from tests.web.live import REQUEST_SECONDS, LiveServer, make_project, serve_project

pytestmark = pytest.mark.slow


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


@contextmanager
def server(project: Path, env: dict[str, str]) -> Iterator[LiveServer]:
    log = project.parent / f"server-{time.monotonic_ns()}.log"
    with serve_project(project, env={**os.environ, **env}, log=log) as running:
        yield running


def sign_up(running: LiveServer, email: str) -> int:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(running.url + "/subscribe", timeout=REQUEST_SECONDS) as response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode())
    assert token
    form = {"email": email, "name": "Grace", "topics": "research", "consent": "yes",
            "csrf_token": token.group(1)}  # fmt: skip
    with opener.open(
        running.url + "/subscribe", urllib.parse.urlencode(form).encode(), timeout=REQUEST_SECONDS
    ) as response:
        return int(response.status)


def test_a_confirmation_accepted_before_a_kill_is_sent_by_the_next_server(
    tmp_path: Path, sendgrid: FakeSendGrid
) -> None:
    project = make_project(tmp_path / "project", "http://127.0.0.1")
    settings = yaml.safe_load((project / "newsletter.yaml").read_text(encoding="utf-8"))
    settings |= {"provider": "sendgrid", "sendgrid": {"api_host": sendgrid.url}}
    (project / "newsletter.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = {
        "NEWSLETTER_SECRET_KEY": SECRET,
        "SENDGRID_API_KEY": API_KEY,
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'newsletter.db'}",
    }
    sendgrid.slow_next(30, deliver=False)  # the mail is out when the server dies

    with server(project, env) as first:
        assert sign_up(first, "grace@example.org") == 200
        sendgrid.wait_for_requests(1)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    assert sendgrid.received_by() == {}

    with server(project, env) as second:
        # At start, the new server sends what the killed one left.
        assert _wait_for(lambda: sendgrid.received_by().get("grace@example.org") == 1)
        sign_up(second, "ada@example.org")
        assert _wait_for(lambda: sendgrid.received_by().get("ada@example.org") == 1)

    assert sendgrid.received_by() == {"grace@example.org": 1, "ada@example.org": 1}


def test_flush_mail_sends_what_a_dead_server_left_and_says_what_waits(
    project: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(config)
    enqueue(store.engine, Letter("grace@example.org", "Confirm", "<p>hi</p>", "hi"))
    store.close()
    monkeypatch.chdir(project)

    result = CliRunner().invoke(cli, ["flush-mail"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Sent 1, to retry later 0, given up 0; queued 0")
    assert len(list((project / "outbox" / "new").iterdir())) == 1


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
