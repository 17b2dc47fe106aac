"""Fixtures for the preview: the WSGI app over a temporary project, and a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.test import Client

from newsletter.preview import PreviewServer, Workspace
from newsletter.preview.app import PreviewApp
from tests.conftest import SEED_ISSUE

SEED_STEM = Path(SEED_ISSUE).stem
PAGE = f"/issue/{SEED_STEM}"  # the preview page of the example issue


def text_of(html: str) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def page_text(client: Client, url: str = PAGE) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return text_of(response.text)


@pytest.fixture
def issue_file(project: Path) -> Path:
    return project / SEED_ISSUE


@pytest.fixture
def workspace(project: Path) -> Workspace:
    return Workspace(project / "newsletter.yaml")


@pytest.fixture
def client(workspace: Workspace) -> Client:
    return Client(PreviewApp(workspace))


def saved(workspace: Workspace, path: Path, text: str) -> None:
    """Write ``path`` and tell the workspace, as the watcher would after a save."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    workspace.changes.notify()


@pytest.fixture
def server(workspace: Workspace) -> Iterator[PreviewServer]:
    """The real server on a free port of 127.0.0.1, its watcher already watching."""
    preview = PreviewServer(workspace, host="127.0.0.1", port=0)
    thread = threading.Thread(target=preview.serve_forever, daemon=True)
    thread.start()
    wait_until_watching(workspace)
    yield preview
    preview.shutdown()
    preview.close()
    thread.join(timeout=30)


def wait_until_watching(workspace: Workspace, timeout: float = 30.0) -> None:
    """Touch a file until the watcher reports it: from then on, no save is missed."""
    probe = workspace.issues_dir / "watch-probe.txt"
    start = workspace.changes.generation
    deadline = time.monotonic() + timeout
    while workspace.changes.generation == start:
        if time.monotonic() > deadline:
            raise AssertionError("the preview's file watcher did not start")
        probe.write_text(str(time.monotonic()), encoding="utf-8")
        time.sleep(0.05)
    probe.unlink()
    time.sleep(0.2)  # let the deletion's event pass, so tests count only their own
