"""``newsletter serve`` in a subprocess on 127.0.0.1: the real production server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import ROOT

# On a two-core machine under load 10 or more, each process gets a fraction of a core:
# a start, a page or a stop may take many seconds.
STARTUP_SECONDS = 60
REQUEST_SECONDS = 60
PORT_ATTEMPTS = 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_project(folder: Path, site_url: str) -> Path:
    """The example newsletter in ``folder``, its links pointing at ``site_url``."""
    folder.mkdir(parents=True)
    shutil.copy2(ROOT / "newsletter.yaml", folder / "newsletter.yaml")
    shutil.copytree(ROOT / "issues", folder / "issues")
    settings = yaml.safe_load((folder / "newsletter.yaml").read_text(encoding="utf-8"))
    settings["site_url"] = site_url
    (folder / "newsletter.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return folder


@dataclass
class LiveServer:
    url: str
    project: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return self.request("GET", path)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) of one request; redirects are not followed."""
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=REQUEST_SECONDS) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read().decode()

    def outbox(self) -> list[Path]:
        folder = self.project / "outbox" / "new"
        if not folder.exists():
            return []
        return sorted(folder.iterdir(), key=lambda path: path.stat().st_mtime_ns)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@contextmanager
def serve(folder: Path, *, env: dict[str, str]) -> Iterator[LiveServer]:
    """Start ``newsletter serve --port N`` for a fresh copy of the example project."""
    project = make_project(folder / "project", "http://127.0.0.1")
    database_url = f"sqlite:///{folder / 'newsletter.db'}"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))},
        "NEWSLETTER_DATABASE_URL": database_url,
        **env,
    }
    with serve_project(project, env=environment, log=folder / "server.log") as server:
        yield server


@contextmanager
def serve_project(project: Path, *, env: dict[str, str], log: Path) -> Iterator[LiveServer]:
    """``newsletter serve`` of ``project`` with exactly ``env``, on a free port of 127.0.0.1
    that its ``site_url`` names.

    A port found free can be taken by another test run before the server binds it (the
    suite runs in parallel, beside other runs): then the server starts again on another.
    """
    for _ in range(PORT_ATTEMPTS):
        server = _start(project, env, log, free_port())
        try:
            _wait_until_healthy(server)
        except PortTaken:
            continue
        except BaseException:
            _stop(server)
            raise
        try:
            yield server
        finally:
            _stop(server)
        return
    raise RuntimeError(f"no free port for the server in {PORT_ATTEMPTS} attempts")


class PortTaken(RuntimeError):
    pass


def _start(project: Path, env: dict[str, str], log: Path, port: int) -> LiveServer:
    url = f"http://127.0.0.1:{port}"
    config = project / "newsletter.yaml"
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["site_url"] = url
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    command = [sys.executable, "-m", "newsletter", "--config", str(config)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "4"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return LiveServer(url, project, env["NEWSLETTER_DATABASE_URL"], process, log)


def _stop(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=STARTUP_SECONDS)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log.read_text()
            if "Address already in use" in log:
                raise PortTaken(log)
            raise RuntimeError(f"the server exited:\n{log}")
        try:
            status, _, body = server.get("/healthz")
            if status == 200 and json.loads(body) == {"status": "ok"}:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"the server did not answer in {STARTUP_SECONDS}s:\n{server.log.read_text()}"
    )
