"""A stand-in for SES v2's ``SendEmail`` that keeps nothing, for the SES memory benchmark.

    python -m benchmarks.ses_sink     # prints its URL; serves until stdin closes

moto keeps every raw message it accepts (a million 40 KB messages would not fit in
memory) and spends some 6 ms of its own CPU on each request, so a million readers
through it would take hours. This one checks what SES would refuse outright (the
``POST /v2/email/outbound-emails`` path, a SigV4 ``Authorization`` header, a sender,
one recipient, raw content that decodes as base64) and answers with a message id,
keeping only the count. Connections are kept open between requests (HTTP/1.1), as
SES's endpoint does.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v2/email/outbound-emails"


def refusal(path: str, headers: dict[str, str], body: bytes) -> str | None:
    """What SES would answer 400 or 403 for, or None to accept."""
    if path != PATH:
        return f"unknown path {path}"
    if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
        return "missing SigV4 authorization"
    try:
        request = json.loads(body)
        to = request["Destination"]["ToAddresses"]
        raw = base64.b64decode(request["Content"]["Raw"]["Data"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        return f"bad request: {error!r}"
    if not request.get("FromEmailAddress") or len(to) != 1 or not raw:
        return "a sender, one recipient and a message are required"
    return None


class Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.count = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the body is a second write: no 40 ms delayed ACK
    server: Sink

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        problem = refusal(self.path, headers, body)
        if problem is None:
            with self.server.lock:
                self.server.count += 1
            status, answer = 200, {"MessageId": str(uuid.uuid4())}
        else:
            status, answer = 400, {"message": problem}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        data = json.dumps({"accepted": self.server.count}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    sink = Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    host, port = sink.server_address[:2]
    print(f"http://{host!s}:{port}", flush=True)
    sys.stdin.read()
    sink.shutdown()


if __name__ == "__main__":
    main()
