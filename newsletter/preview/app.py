"""The preview's web pages: a small WSGI app over a :class:`Workspace`.

Routes:

- ``/``: the index of issues, newest first.
- ``/issue/<stem>``: the preview page (``?as=ADDRESS`` previews for that subscriber).
- ``/issue/<stem>/email.html?scheme=light|dark``: the email as the iframes show it.
- ``/issue/<stem>/email.txt``: the plain-text part.
- ``/assets/<path>``: the project's local images, which the preview's email links to.
- ``/_preview/events``: server-sent events, one ``change`` per relevant save.

Every page is built from local files: the page's own CSP allows nothing from elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from newsletter.errors import NewsletterError
from newsletter.preview.frames import SCHEMES, frame_document
from newsletter.preview.watch import IMAGE_SUFFIXES
from newsletter.preview.workspace import Attempt, Problem, Workspace, relative
from newsletter.render.checks import CLIP_ERROR_BYTES, CLIP_WARNING_BYTES
from newsletter.render.images import asset_file

HERE = Path(__file__).parent
KEEP_ALIVE_SECONDS = 15.0  # also how soon a closed tab's event stream is noticed

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'"
)
# The email may link to remote images (as it will in the inbox); nothing else leaves.
EMAIL_POLICY = (
    "default-src 'none'; img-src 'self' data: https: http:; style-src 'unsafe-inline'; "
    "font-src 'self' data:; base-uri 'none'; "
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox"
)
# An image is shown, never run: an SVG in the project opened as a page (or any file
# a browser might sniff as HTML) gets no script, no plugins and an origin of its own,
# so it cannot read the preview's pages (subscribers' addresses, real tokens).
ASSET_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; "
    "style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
NO_STORE = {"Cache-Control": "no-store"}
STATIC_FILES = {"preview.css": "text/css", "preview.js": "text/javascript"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hostname(host_header: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``; ``[::1]:8000`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.partition(":")[0]


class PreviewApp:
    """WSGI application. Requests whose Host is not loopback nor one of ``allowed_hosts``
    are refused, so that a web page cannot reach the preview through a rebound DNS name
    (also when the preview listens on another address: see ``--allow-host``)."""

    def __init__(self, workspace: Workspace, *, allowed_hosts: Iterable[str] = ()) -> None:
        self.workspace = workspace
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.url_map = Map(
            [
                Rule("/", endpoint="index"),
                Rule("/issue/<stem>", endpoint="page"),
                Rule("/issue/<stem>/email.html", endpoint="email_html"),
                Rule("/issue/<stem>/email.txt", endpoint="email_text"),
                Rule("/assets/<path:path>", endpoint="asset"),
                Rule("/_preview/events", endpoint="events"),
                Rule("/_preview/static/<name>", endpoint="static"),
            ]
        )
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(
            clip_limit=CLIP_ERROR_BYTES, clip_warning=CLIP_WARNING_BYTES, kb=_kb
        )
        # Messages name files by absolute path; inside the project, the rest is noise.
        root_prefix = f"{workspace.root}{os.sep}"
        self.templates.filters["short"] = lambda text: str(text).replace(root_prefix, "")

    def page_path(self, issue: Path | None = None, address: str | None = None) -> str:
        if issue is None:
            return "/"
        query = f"?{urlencode({'as': address})}" if address else ""
        return f"/issue/{issue.resolve().stem}{query}"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as error:
            response = error.get_response(environ)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        host = hostname(request.host).lower()
        if not (is_loopback(host) or host in self.allowed_hosts):
            names = ", ".join(["127.0.0.1", "localhost", *sorted(self.allowed_hosts)])
            return Response(
                f"This preview only answers at {names}; "
                "start it with --allow-host NAME for another.\n",
                421,
            )
        if request.method not in ("GET", "HEAD"):
            return Response("The preview only reads.\n", 405, {"Allow": "GET, HEAD"})
        endpoint, arguments = self.url_map.bind_to_environ(request.environ).match()
        view = getattr(self, f"view_{endpoint}")
        response: Response = view(request, **arguments)
        return response

    # Pages

    def view_index(self, request: Request) -> Response:
        tag = self.workspace.changes.tag  # before reading: a later save must refresh the page
        try:
            entries, problem = self.workspace.index(), None
        except NewsletterError as error:
            entries, problem = [], Problem.from_error(error)
        return self._page("index.html", tag=tag, entries=entries, problem=problem)

    def view_page(self, request: Request, stem: str) -> Response:
        tag = self.workspace.changes.tag
        path = self.workspace.issue_path(stem)
        if path is None:  # renamed or deleted while its page was open, or a bad link
            problem = Problem(
                "No such issue",
                (f"issues/{stem}.md does not exist: was it renamed or deleted?",),
            )
            response = self._page("index.html", tag=tag, entries=[], problem=problem)
            response.status_code = 404
            return response
        address = request.args.get("as")
        attempt = self.workspace.preview(path, address)
        try:
            choices = self.workspace.recipients().choices()
        except Exception:  # the error panel shows what is wrong (config, database)
            choices = []
        frame_query = {"as": address} if address is not None else {}
        if attempt.preview is not None:
            frame_query["v"] = attempt.preview.version
        return self._page(
            "page.html",
            tag=self.workspace.changes.tag_of(attempt.generation),
            stem=stem,
            file=relative(path, self.workspace.root),
            attempt=attempt,
            preview=attempt.preview,
            problem=attempt.problem,
            address=address if address is not None else self.workspace.default_address or "",
            choices=choices,
            frame_urls={
                scheme: f"/issue/{stem}/email.html?{urlencode({**frame_query, 'scheme': scheme})}"
                for scheme in SCHEMES
            },
            text_url=f"/issue/{stem}/email.txt?{urlencode(frame_query)}",
        )

    def view_email_html(self, request: Request, stem: str) -> Response:
        attempt = self._attempt(request, stem)
        requested = request.args.get("scheme", "light")
        scheme = next((scheme for scheme in SCHEMES if scheme == requested), None)
        if scheme is None:
            raise NotFound(f"scheme must be one of {', '.join(SCHEMES)}")
        if attempt.preview is None:
            html = "<!doctype html><p>This issue has not rendered yet: see the error above.</p>"
        else:
            html = frame_document(attempt.preview.frame_html, scheme)
        return Response(
            html,
            mimetype="text/html",
            headers={**NO_STORE, "Content-Security-Policy": EMAIL_POLICY},
        )

    def view_email_text(self, request: Request, stem: str) -> Response:
        attempt = self._attempt(request, stem)
        text = attempt.preview.text if attempt.preview else "This issue has not rendered yet.\n"
        return Response(text, mimetype="text/plain", headers=NO_STORE)

    # Files

    def view_asset(self, request: Request, path: str) -> Response:
        found = None
        if Path(path).suffix.lower() in IMAGE_SUFFIXES:
            found = asset_file(self.workspace.root, path)
        if found is None:
            raise NotFound("the preview serves the project's images only")
        response = send_file(found, request.environ, max_age=0)
        response.headers.update(ASSET_HEADERS)
        return response

    def view_static(self, request: Request, name: str) -> Response:
        mimetype = STATIC_FILES.get(name)
        if mimetype is None:
            raise NotFound()
        return Response((HERE / "static" / name).read_bytes(), mimetype=mimetype, headers=NO_STORE)

    def view_events(self, request: Request) -> Response:
        return Response(
            self._events(),
            mimetype="text/event-stream",
            headers={**NO_STORE, "X-Accel-Buffering": "no"},
        )

    def _events(self) -> Iterator[str]:
        changes = self.workspace.changes
        seen = changes.generation
        # The current tag first: a page rendered before a change it missed catches up.
        yield f"retry: 1000\nevent: change\ndata: {changes.tag}\n\n"
        while not changes.closed:
            if changes.wait(seen, timeout=KEEP_ALIVE_SECONDS):
                seen = changes.generation
                yield f"event: change\ndata: {changes.tag}\n\n"
            elif not changes.closed:
                yield ": keep-alive\n\n"  # also finds out when the tab has gone

    # Helpers

    def _issue(self, stem: str) -> Path:
        path = self.workspace.issue_path(stem)
        if path is None:
            raise NotFound(f"no issue {stem}.md in issues/")
        return path

    def _attempt(self, request: Request, stem: str) -> Attempt:
        return self.workspace.preview(self._issue(stem), request.args.get("as"))

    def _page(self, template: str, **context: Any) -> Response:
        html = self.templates.get_template(template).render(**context)
        return Response(
            html,
            mimetype="text/html",
            headers={**NO_STORE, "Content-Security-Policy": PAGE_POLICY},
        )


def _kb(size: int) -> str:
    # Decimal kilobytes, the unit of Gmail's "about 102 KB" (102,400 bytes).
    return f"{size / 1000:.1f} KB"
