"""Serving the preview: a threaded WSGI server on one port, the watcher beside it.

The standard library's WSGI server, one thread per connection, is all a single
editor's browser needs; each page keeps one connection open for its reload events.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from newsletter.errors import NewsletterError
from newsletter.preview.app import PreviewApp, is_loopback
from newsletter.preview.watch import Watcher
from newsletter.preview.workspace import Workspace

DEFAULT_PORT = 8000


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per image and event stream would drown the editor's terminal


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # an open event stream must not keep the process alive
    allow_reuse_address = True  # restart on the same port at once after Ctrl-C


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class PreviewServer:
    """The preview of one newsletter folder, listening on ``host:port`` once created."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        on_change: Callable[[list[Path]], None] | None = None,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.workspace = workspace
        # The address it listens on is a name the editor may use; a wildcard is not.
        bound = [] if host in ("0.0.0.0", "::", "") or is_loopback(host) else [host]
        self.app = PreviewApp(workspace, allowed_hosts=[*bound, *allowed_hosts])
        self._httpd = _bind(host, port)
        self._httpd.set_app(self.app)
        self.watcher = Watcher(workspace, on_change)
        self.watcher.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def page_url(self, issue: Path | None = None, address: str | None = None) -> str:
        return self.url + self.app.page_path(issue, address)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called from another thread or Ctrl-C."""
        self._httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` running in another thread."""
        self._httpd.shutdown()

    def close(self) -> None:
        """End the event streams, stop watching, free the port, close the store."""
        self.workspace.changes.close()
        self.watcher.stop()
        self._httpd.server_close()
        self.workspace.close()

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _bind(host: str, port: int) -> _ThreadingWSGIServer:
    server_class = _ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer
    try:
        return server_class((host, port), _QuietHandler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise NewsletterError(
                f"port {port} on {host} is already in use (another preview?); "
                f"stop that program or choose another port with --port {port + 1}"
            ) from None
        if error.errno == errno.EACCES:
            raise NewsletterError(
                f"not allowed to listen on port {port}; choose a port above 1023 with --port"
            ) from None
        reason = error.strerror or str(error)
        raise NewsletterError(
            f"cannot listen on {host}:{port} ({reason}); check --host, or leave it out "
            "to use 127.0.0.1"
        ) from None
