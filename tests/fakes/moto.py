"""moto in server mode (``moto_server``) on 127.0.0.1: the AWS endpoint of the SES tests.

    with MotoServer() as aws:          # a free port; the environment points boto3 at it
        aws.reset()                    # forget every resource (between tests)
        aws.sent_count("eu-west-1")    # messages SES accepted, from GetSendQuota

Started as a subprocess (moto's own entry point), so it is the real HTTP service boto3
talks to, signatures, JSON protocol and all.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fakes import LocalServer

REGION = "eu-west-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def moto_server_command() -> list[str] | None:
    """How to start moto_server here: beside this Python, else on the PATH."""
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    return [found] if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer(LocalServer):
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> MotoServer:
        for _ in range(5):  # another process may take the port between probe and bind
            port = free_port()
            self.process = subprocess.Popen(
                [*self.command, "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.url = f"http://127.0.0.1:{port}"
            if self._ready():
                return self
            self.stop()
        raise RuntimeError("moto_server did not start")

    def _ready(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    return True
            except OSError:
                time.sleep(0.2)
        return False

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
