"""The preview as a running program: the command, its port, events, and Ctrl-C."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
import watchfiles
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.preview import PreviewServer, Workspace
from newsletter.preview.watch import Watcher
from tests.conftest import SEED_ISSUE

# On a two-core machine under load 10 or more, a rebuild, a page or a stop can take
# many seconds.
WAIT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_event(stream: http.client.HTTPResponse) -> dict[str, str]:
    """The next server-sent event, keep-alive comments skipped."""
    fields: dict[str, str] = {}
    while True:
        line = stream.readline().decode("utf-8")
        if not line:
            raise AssertionError("the event stream ended")
        line = line.rstrip("\n")
        if not line:
            if fields.get("event"):
                return fields
            continue
        if not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def open_events(url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT_SECONDS)
    connection.request("GET", "/_preview/events")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    return connection, response


def test_a_save_sends_a_change_event_to_the_page(server: PreviewServer, project: Path) -> None:
    connection, events = open_events(server.url)
    try:
        first = read_event(events)
        assert first["event"] == "change"

        issue = project / SEED_ISSUE
        issue.write_text(issue.read_text() + "\nOne more line.\n", encoding="utf-8")

        second = read_event(events)
        assert second["event"] == "change"
        assert second["data"] != first["data"]
    finally:
        connection.close()


class FilterCall(NamedTuple):
    path: Path
    change: watchfiles.Change
    relevant: bool
    generation: int  # the workspace's generation when the watcher asked


@pytest.fixture
def filter_calls(monkeypatch: pytest.MonkeyPatch) -> list[FilterCall]:
    """Every file change the preview's watcher judged, in order (the real judgement)."""
    calls: list[FilterCall] = []
    real = Watcher.relevant

    def relevant(self: Watcher, change: watchfiles.Change, name: str) -> bool:
        verdict = real(self, change, name)
        calls.append(FilterCall(Path(name), change, verdict, self.workspace.changes.generation))
        return verdict

    monkeypatch.setattr(Watcher, "relevant", relevant)
    return calls


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the preview's watcher did not see the change"
        time.sleep(0.01)


def test_files_the_preview_does_not_use_send_no_event(
    filter_calls: list[FilterCall], request: pytest.FixtureRequest, project: Path
) -> None:
    server: PreviewServer = request.getfixturevalue("server")  # watching through the spy
    workspace = server.workspace
    probe = workspace.issues_dir / "watch-probe.txt"  # the fixture's own last change
    wait_until(lambda: any(c.path == probe and c.change.name == "deleted" for c in filter_calls))
    ignored = {project / "notes.txt", project / "newsletter.db"}

    (project / "notes.txt").write_text("not part of any issue", encoding="utf-8")
    (project / "newsletter.db").write_bytes(b"")
    wait_until(lambda: ignored <= {call.path for call in filter_calls})
    config = workspace.config_path
    config.write_text(config.read_text() + "\n", encoding="utf-8")
    wait_until(lambda: any(call.path == config for call in filter_calls))
    [config_call, *_] = [call for call in filter_calls if call.path == config]
    wait_until(lambda: workspace.changes.generation > config_call.generation)  # it counted

    judged = [call for call in filter_calls if call.path in ignored]
    assert judged and not any(call.relevant for call in judged)
    assert config_call.relevant
    # Nothing was announced between the ignored files and the config's save.
    assert {call.generation for call in judged} == {config_call.generation}


def test_a_taken_port_is_one_clear_error_suggesting_another(runner: CliRunner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = runner.invoke(cli, ["preview", "--no-open", "--port", str(port), SEED_ISSUE])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: port {port} on 127.0.0.1 is already in use (another preview?); "
        f"stop that program or choose another port with --port {port + 1}\n"
    )


def test_the_command_opens_the_issue_in_the_browser(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def open_then_press_ctrl_c(url: str) -> bool:
        opened.append(url)
        raise KeyboardInterrupt

    monkeypatch.setattr(webbrowser, "open", open_then_press_ctrl_c)
    result = runner.invoke(cli, ["preview", "--port", "0", "--as", "jane@example.org", SEED_ISSUE])

    assert result.exit_code == 0
    assert len(opened) == 1
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/issue/{Path(SEED_ISSUE).stem}", opened[0])
    assert result.output.splitlines() == [
        f"Previewing at {opened[0]}",
        f"Watching {Path.cwd().resolve()} for changes. Press Ctrl-C to stop.",
        "Stopped.",
    ]


def test_a_missing_issue_is_an_error_before_serving(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["preview", "--no-open", "issues/2020-01-01-nope.md"])

    assert result.exit_code == 1
    assert result.output == "Error: issues/2020-01-01-nope.md: no such issue file\n"


def test_an_unusable_host_is_one_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["preview", "--no-open", "--host", "192.0.2.1", "--port", "0"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot listen on 192.0.2.1:0 (")
    assert result.output.endswith("check --host, or leave it out to use 127.0.0.1\n")


def current_tag(url: str) -> str:
    """The change tag the server sends first on a new event stream: instance-generation."""
    connection, events = open_events(url)
    try:
        return read_event(events)["data"]
    finally:
        connection.close()


def start_preview(project: Path) -> tuple[subprocess.Popen[str], int, str]:
    """``newsletter preview`` on a free port, with the first line it printed.

    A port found free can be taken by another test run before the preview binds it (the
    suite runs in parallel, beside other runs): then it starts again on another."""
    command = [sys.executable, "-m", "newsletter", "preview", "--no-open", SEED_ISSUE]
    for _ in range(5):
        port = free_port()
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None and process.stderr is not None
        first_line = process.stdout.readline()
        if first_line.startswith("Previewing at "):
            return process, port, first_line
        with process:
            if process.poll() is None:
                process.kill()
            said = first_line + process.stdout.read() + process.stderr.read()
        assert "already in use" in said, said
    raise AssertionError("no free port for the preview in 5 attempts")


@pytest.mark.slow
def test_the_command_reports_saves_and_stops_cleanly_on_ctrl_c(project: Path) -> None:
    process, port, first_line = start_preview(project)
    with process:
        assert process.stdout is not None and process.stderr is not None
        try:
            url = f"http://127.0.0.1:{port}/issue/{Path(SEED_ISSUE).stem}"
            assert first_line == f"Previewing at {url}\n"
            with urlopen(url, timeout=WAIT_SECONDS) as page:
                assert page.status == 200
            connection, events = open_events(url)  # an open stream must not hold it up
            read_event(events)
            issue = project / SEED_ISSUE
            deadline = time.monotonic() + WAIT_SECONDS
            while current_tag(url).endswith("-0"):  # saved until the starting watcher sees it
                assert time.monotonic() < deadline, "the save was never noticed"
                issue.write_text(issue.read_text(encoding="utf-8") + "\n", encoding="utf-8")
                time.sleep(0.1)

            process.send_signal(signal.SIGINT)
            process.wait(timeout=WAIT_SECONDS)
            connection.close()
        finally:
            if process.poll() is None:
                process.kill()
        # The same buffered files as readline() above, which may hold more lines already.
        stdout, stderr = process.stdout.read(), process.stderr.read()

    assert process.returncode == 0
    lines = stdout.splitlines()  # after the "Previewing at" line read above
    assert lines[0] == f"Watching {project.resolve()} for changes. Press Ctrl-C to stop."
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d changed: 2026-11-26-stem-cells-in-breast-milk\.md", lines[1]
    )
    assert lines[-1] == "Stopped."
    assert stderr == ""
    # A new preview starts on the same port at once (it would fail if the port were held).
    with PreviewServer(Workspace(project / "newsletter.yaml"), port=port) as again:
        assert again.port == port


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost"])
def test_page_url_names_the_issue(workspace: Workspace, address: str, project: Path) -> None:
    with PreviewServer(workspace, host=address, port=0) as server:
        assert server.page_url(project / SEED_ISSUE, "jane@example.org") == (
            f"{server.url}/issue/{Path(SEED_ISSUE).stem}?as=jane%40example.org"
        )
        assert server.page_url() == f"{server.url}/"
