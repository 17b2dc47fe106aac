"""A small web site on 127.0.0.1: fixture pages, feeds and images for `newsletter new
--from` and `newsletter check --links`, with a count of requests per path::

    with FakeWebSite({"/post/": Page(html), "/gone": Page("", status=404)}) as site:
        site.url + "/post/"
        site.requests["/post/"]
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from tests.fakes import LocalServer


@dataclass(frozen=True)
class Page:
    body: bytes | str
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    allow_head: bool = True  # False: HEAD answers 405, as some servers do
    delay: float = 0.0  # seconds before answering

    @property
    def data(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


class FakeWebSite(LocalServer):
    def __init__(self, pages: dict[str, Page]) -> None:
        self.pages = pages
        self.requests: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, *, body: bool) -> None:
                site.requests[self.path] += 1
                page = site.pages.get(self.path)
                if page is None:
                    page = Page("not found", status=404)
                elif not body and not page.allow_head:
                    page = Page("", status=405)
                if page.delay:
                    time.sleep(page.delay)
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.data)))
                self.end_headers()
                if body:
                    self.wfile.write(page.data)

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
