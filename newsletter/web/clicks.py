"""``GET /c/<token>``: count a click on a campaign's link and redirect to it (302);
``GET /o/<token>``: count an open and answer a transparent pixel (``/o/<token>/<reader
key>`` with ``tracking.per_subscriber``: also remember that this reader opened). ``HEAD``
gets the same answers and counts nothing. Anything else under these paths (a bad
token, an unknown link) falls through to the app: a 404 page.

The token is signed and names (campaign, link number) only; the target is the URL
recorded for that link when the campaign started, so a token cannot redirect anywhere
else, and a forged or tampered one is a 404. A mail scanner's GET is counted like a
reader's (nothing tells them apart) but changes nothing else: no subscription, no
ledger row.

Counting must not slow the redirect down: a click adds to an in-memory counter, and a
writer thread adds the counts to ``campaign_links`` about once a second, in one
transaction (and on shutdown), through :mod:`newsletter.store.engagement`, as the
providers' opens and clicks are written. The link targets are cached: a link never
changes.
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
from collections import Counter
from typing import Any

from flask import Flask
from sqlalchemy import select
from werkzeug.urls import iri_to_uri

from newsletter.errors import TokenError
from newsletter.send.campaign_rows import now
from newsletter.store import Store
from newsletter.store.database import writing
from newsletter.store.engagement import (
    add_first_party_clicks,
    add_totals,
    record_link_clickers,
    record_readers,
)
from newsletter.store.scheduling import campaign_links
from newsletter.tokens import ClickClaim, TrackingSigner

log = logging.getLogger(__name__)

EXTENSION = "newsletter.clicks"
FLUSH_SECONDS = 1.0
TOKEN_MAX = 300  # a link token and a reader key: under 100 characters each
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class ClickCounter:
    """Counts in memory, written to the store by one thread about once a second."""

    def __init__(self, store: Store, *, per_subscriber: bool) -> None:
        self.store = store
        self.per_subscriber = per_subscriber
        self._lock = threading.Lock()
        self._clicks: Counter[tuple[int, int]] = Counter()
        self._opens: Counter[int] = Counter()
        self._readers: set[tuple[int, str, int]] = set()  # (campaign, "open", subscriber)
        self._who: set[tuple[int, int, int]] = set()
        self._targets: dict[tuple[int, int], str | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsletter-clicks", daemon=True)
        self._thread.start()

    def target(self, campaign_id: int, link: int) -> str | None:
        key = (campaign_id, link)
        if key not in self._targets:
            with self.store.engine.connect() as connection:
                url = connection.scalar(
                    select(campaign_links.c.url).where(
                        campaign_links.c.campaign_id == campaign_id, campaign_links.c.link == link
                    )
                )
            if url is None:
                return None
            # As a header value: a link with spaces or non-ASCII characters, encoded.
            self._targets[key] = iri_to_uri(url)
        return self._targets[key]

    def click(self, claim: ClickClaim) -> None:
        with self._lock:
            self._clicks[(claim.campaign_id, claim.link)] += 1
            if self.per_subscriber and claim.subscriber_id is not None:
                self._who.add((claim.campaign_id, claim.link, claim.subscriber_id))

    def open(self, claim: ClickClaim) -> None:
        with self._lock:
            self._opens[claim.campaign_id] += 1
            if self.per_subscriber and claim.subscriber_id is not None:
                self._readers.add((claim.campaign_id, "open", claim.subscriber_id))

    def flush(self) -> None:
        with self._lock:
            clicks, self._clicks = self._clicks, Counter()
            opens, self._opens = self._opens, Counter()
            who, self._who = self._who, set()
            readers, self._readers = self._readers, set()
        if not (clicks or opens or who or readers):
            return
        when = now()
        with writing(self.store.engine) as connection:
            add_first_party_clicks(connection, clicks)
            add_totals(connection, {(campaign, "open"): n for campaign, n in opens.items()})
            record_readers(connection, readers, when)
            # A reader erased since their mail went out still has the link: their click
            # counts above, but no row names them (record_link_clickers leaves them out).
            record_link_clickers(connection, who, when)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # the next flush tries again; the counts are lost, not the app
                log.exception("could not record clicks")


def init_clicks(app: Flask, store: Store, secret: str, *, per_subscriber: bool) -> None:
    """Answer ``/c/`` and ``/o/`` in front of Flask (see :class:`TrackingRoutes`)."""
    counter = ClickCounter(store, per_subscriber=per_subscriber)
    app.extensions[EXTENSION] = counter
    app.wsgi_app = TrackingRoutes(app.wsgi_app, TrackingSigner(secret), counter)  # type: ignore[method-assign]


def close_clicks(app: Flask) -> None:
    counter = app.extensions.get(EXTENSION)
    if counter is not None:
        counter.close()


class TrackingRoutes:
    """WSGI middleware answering ``GET /c/<token>`` and ``GET /o/<token>`` itself.

    A redirect needs none of what Flask adds to a page (sessions, CSRF, templates,
    security headers for HTML), and going through it costs two thirds of the time of a
    click; a burst of clicks after an issue lands is the busiest the app gets. Every
    other request goes to the app.
    """

    def __init__(self, app: Any, signer: TrackingSigner, counter: ClickCounter) -> None:
        self.app = app
        self.signer = signer
        self.counter = counter
        # A campaign has a few dozen links, each in every reader's mail: the same tokens
        # arrive again and again, and checking a signature is most of a click's cost.
        self._link = functools.lru_cache(maxsize=4096)(self._read_link)

    def _read_link(self, token: str) -> ClickClaim | None:
        try:
            return self.signer.read_click_token(token)
        except TokenError:
            return None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path: str = environ.get("PATH_INFO", "")
        if path[:3] not in ("/c/", "/o/") or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        claim = self._claim(path[3:])
        if claim is None:
            return self.app(environ, start_response)  # Flask's own 404 page
        # HEAD is a link checker or a previewer asking what is there: answered the same,
        # never counted (no reader is behind it).
        counted = environ["REQUEST_METHOD"] == "GET"
        if path[1] == "o":
            if claim.link != TrackingSigner.OPEN:
                return self.app(environ, start_response)
            if counted:
                self.counter.open(claim)
            headers = [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL)))]
            start_response("200 OK", [*headers, *_HEADERS])
            return [PIXEL if counted else b""]
        target = self.counter.target(claim.campaign_id, claim.link) if claim.link >= 0 else None
        if target is None:
            return self.app(environ, start_response)
        if counted:
            self.counter.click(claim)
        start_response("302 Found", [("Location", target), ("Content-Length", "0"), *_HEADERS])
        return [b""]

    def _claim(self, rest: str) -> ClickClaim | None:
        """The link's claim; with a reader's key (``<token>/<key>``), whose click it was."""
        token, _, key = rest.partition("/")
        if not token or len(rest) > TOKEN_MAX:
            return None
        claim = self._link(token)
        if claim is None or not key:
            return claim
        try:
            campaign_id, subscriber_id = self.signer.read_reader_key(key)
        except TokenError:
            return None
        if campaign_id != claim.campaign_id:
            return None  # a key from another campaign's mail: not this reader's link
        return ClickClaim(claim.campaign_id, claim.link, subscriber_id)


# Every click goes through here: never cached (each one counts), and the target site
# learns nothing about this one.
_HEADERS = [
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]
