"""What the Postmark and Mailgun stand-ins share: a real HTTP server on 127.0.0.1 that
checks each POST as the real API does and can be told how to answer the next ones.

A subclass implements :meth:`FakeApi.check` (the API's own refusals, from auth to
limits: ``(status, body)``, or None to accept) and :meth:`FakeApi.accept` (record the
messages; returns the success body). Faults come after the checks, as with the
SendGrid stand-in: a request the API would refuse is refused whatever was scripted.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import LocalServer

HOLD_LIMIT = 60.0


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer with this status and body
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without an answer
    deliver: bool = True  # with drop: whether the messages go out all the same
    hold: threading.Event | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # lowercase names
    body: bytes
    parsed: Any = None  # what check() read from the body, for accept()
    method: str = "POST"


class FakeApi(LocalServer):
    # HTTP/1.1 keeps a client's connection open between requests, as an AWS endpoint
    # does (botocore pools its connections); the others' clients open one a request.
    keep_alive = False

    def __init__(self, *, keep_requests: bool = True) -> None:
        self.keep_requests = keep_requests  # False: only count (the benchmark)
        self.lock = threading.Condition()
        self.faults: list[Fault] = []
        self.received: Counter[str] = Counter()  # recipient address -> messages
        self.requests = 0
        self.answers: list[int] = []
        self.batch_sizes: list[int] = []  # messages per accepted request
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # What the subclass says.

    def check(self, request: Request) -> tuple[int, bytes] | None:
        raise NotImplementedError

    def accept(self, request: Request) -> tuple[bytes, list[str]]:
        """Record an accepted request: (the answer's body, the addresses it went to)."""
        raise NotImplementedError

    def fault_body(self, status: int) -> bytes:
        return json.dumps({"message": "too many requests" if status == 429 else "error"}).encode()

    def answer_get(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        """A GET other than ``/_fake/stats`` (an API's read operation): 404 unless the
        subclass serves it."""
        return 404, b'{"message": "not found"}', {}

    # Scripting the next answers.

    def fail_next(
        self, status: int, *, times: int = 1, headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> None:  # fmt: skip
        fault = Fault(status=status, body=body or self.fault_body(status), headers=headers or {})
        self.faults.extend([fault] * times)

    def drop_next(self, *, deliver: bool = False, times: int = 1) -> None:
        self.faults.extend([Fault(drop=True, deliver=deliver)] * times)

    def slow_next(self, seconds: float, *, times: int = 1) -> None:
        self.faults.extend([Fault(delay=seconds)] * times)

    def hold_next(self) -> threading.Event:
        release = threading.Event()
        self.faults.append(Fault(hold=release))
        return release

    def normal_next(self, *, times: int = 1) -> None:
        self.faults.extend([Fault()] * times)

    # What arrived.

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: self.requests >= count, timeout):
                raise TimeoutError(f"{self.requests} request(s) arrived, expected {count}")

    def received_by(self) -> Counter[str]:
        with self.lock:
            return Counter(self.received)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "answers": Counter(str(status) for status in self.answers),
                "recipients": sum(self.received.values()),
                "distinct_recipients": len(self.received),
                "duplicates": sum(count - 1 for count in self.received.values() if count > 1),
                "max_batch": max(self.batch_sizes, default=0),
            }

    # Running.

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, request: Request) -> tuple[int, bytes, dict[str, str]] | None:
        """The answer to one POST; None: hang up without one."""
        with self.lock:
            self.requests += 1
            fault = self.faults.pop(0) if self.faults else Fault()
            self.lock.notify_all()
        refused = self.check(request)
        if refused is not None:
            return refused[0], refused[1], {}
        if fault.status is not None:
            return fault.status, fault.body, fault.headers
        answer = b""
        if fault.deliver:
            answer, addresses = self.accept(request)
            with self.lock:
                self.received.update(addresses)
                self.batch_sizes.append(len(addresses))
        if fault.delay:
            time.sleep(fault.delay)
        if fault.hold is not None:
            fault.hold.wait(HOLD_LIMIT)
        if fault.drop:
            return None
        return 200, answer, {}


def _handler_for(fake: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if fake.keep_alive else "HTTP/1.0"
        disable_nagle_algorithm = fake.keep_alive  # no 40 ms delayed ACK between writes

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/_fake/stats":
                self._answer(200, json.dumps(fake.stats()).encode())
            else:
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._answer(*fake.answer_get(Request(self.path, headers, b"", method="GET")))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = fake.handle(Request(self.path, headers, raw, method=self.command))
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(*answer)

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            with fake.lock:
                fake.answers.append(status)
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

        do_DELETE = do_POST

    return Handler


def serve_until_stdin_closes(fake: FakeApi) -> None:
    """For the benchmark: another process, so it does not share the sender's GIL."""
    with fake:
        print(fake.url, flush=True)
        sys.stdin.read()
