"""Pages about no one in particular: the home page with the past issues, the issue
archive, the logo, and ``/healthz``."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
import weakref
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    send_file,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import NewsletterError
from newsletter.ledger import find_campaign, list_campaigns
from newsletter.store.schema import webhook_events
from newsletter.web.archive import PastIssue
from newsletter.web.context import Services, services
from newsletter.web.pages import page
from newsletter.web.security import use_archive_policy

log = logging.getLogger(__name__)

blueprint = Blueprint("public", __name__)

ARCHIVE_MAX_AGE = 300  # seconds: the same for every reader, so caches may keep it
IMAGE_MAX_AGE = 86400
FEED_EPOCH = "2000-01-01"  # a feed's <updated> before any issue has gone out
# What mail and the archive link to; never the config, the database or the outbox.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})


@blueprint.get("/")
def home() -> Response:
    """Where the site name in every page's header leads: what the newsletter is, a way
    to subscribe, and the issues that have gone out (drafts stay private)."""
    response = page("home.html", issues=_past_issues(services()))
    response.headers["Cache-Control"] = f"public, max-age={ARCHIVE_MAX_AGE}"
    return response


@blueprint.get("/feed.xml")
def feed() -> Response:
    """The past issues as an Atom feed, for feed readers (linked from the home page)."""
    site = services()
    issues = _past_issues(site)
    updated = max((issue.date for issue in issues), default=None)
    response = Response(
        render_template(
            "feed.xml",
            entries=[(issue, site.links.view(issue.slug)) for issue in issues],
            updated=updated.isoformat() if updated else FEED_EPOCH,
            home_url=f"{site.config.site_url}/",
            feed_url=f"{site.config.site_url}/feed.xml",
        ),
        mimetype="application/atom+xml",
    )
    response.headers["Cache-Control"] = f"public, max-age={ARCHIVE_MAX_AGE}"
    return response


def _past_issues(site: Services) -> list[PastIssue]:
    """The issues that went out (have a campaign), newest first; drafts never."""
    return site.archive.past_issues(campaign.slug for campaign in list_campaigns(site.store))


@blueprint.get("/archive")
def archive_index() -> ResponseReturnValue:
    return redirect(url_for("public.home"), code=301)


@blueprint.get("/archive/<slug>")
def archive(slug: str) -> Response:
    site = services()
    path = site.archive.find(slug)
    # Only issues that have gone out: a draft in issues/ is not public yet.
    if path is None or find_campaign(site.store, slug) is None:
        abort(404)
    try:
        html = site.archive.html(path)
    except NewsletterError as error:
        # The editor's file does not render (a broken template, a missing image).
        log.error("cannot show the archive page for %s: %s", path.name, error)
        abort(500)
    assets = urlsplit(site.config.assets_base_url)
    use_archive_policy(f"{assets.scheme}://{assets.netloc}")
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = f"public, max-age={ARCHIVE_MAX_AGE}"
    return response


@blueprint.get("/assets/<path:path>")
def asset(path: str) -> Response:
    """An image of the project, where ``assets_url`` points by default (``site_url/assets``),
    so the images in mail and in the archive work without uploading them elsewhere."""
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES or "/." in f"/{path}":
        abort(404)
    root = services().config.root
    # Images in mail are resized under hashed names in build/assets/ (newsletter.images).
    processed = root / "build" / "assets"
    folder = processed if (processed / path).is_file() else root
    response = send_from_directory(folder, path, max_age=IMAGE_MAX_AGE)
    response.headers["Cache-Control"] = f"public, max-age={IMAGE_MAX_AGE}"
    return response


@blueprint.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every site: the logo if there is one, else nothing."""
    if services().config.brand.logo:
        return logo()
    return Response(status=204)


@blueprint.get("/brand/logo")
def logo() -> Response:
    config = services().config
    if not config.brand.logo:
        abort(404)
    path = (config.root / config.brand.logo).resolve()
    if not path.is_file():
        abort(404)
    response = send_file(path, max_age=IMAGE_MAX_AGE)
    response.headers["Cache-Control"] = f"public, max-age={IMAGE_MAX_AGE}"
    return response


# A write probe at most this often per process; the calls in between only SELECT 1 and
# reuse its answer (load balancers poll often; the web benchmark uses /healthz as its
# baseline).
WRITE_PROBE_SECONDS = 2.0
_write_probes: weakref.WeakKeyDictionary[Engine, tuple[float, str | None]] = (
    weakref.WeakKeyDictionary()
)  # engine -> (when, error)
_probe_lock = threading.Lock()


@blueprint.get("/healthz")
def healthz() -> Response:
    """200 while the app can write to its database; load balancers poll this.

    A read-only database (a full or read-only file, a PostgreSQL standby) still answers
    SELECTs, while every unsubscribe would fail: so the probe writes a row and rolls
    it back (on SQLite it takes the write lock, waiting like any writer).
    """
    engine = services().store.engine
    try:
        with engine.connect() as connection:
            connection.execute(select(literal(1)))
        problem = _write_problem(engine)
    except SQLAlchemyError as error:
        problem = _first_line(error)
    if problem is not None:
        log.error("health check: the database cannot be written: %s", problem)
        response = jsonify(status="database unavailable")
        response.status_code = 503
        return response
    return jsonify(status="ok")


def _write_problem(engine: Engine) -> str | None:
    """Why the database cannot be written (None: it can), probed every few seconds."""
    now = time.monotonic()
    with _probe_lock:
        probed = _write_probes.get(engine)
        if probed is not None and now - probed[0] < WRITE_PROBE_SECONDS:
            return probed[1]
    problem: str | None = None
    try:
        with engine.connect() as connection:
            connection.execution_options(write=True)
            with connection.begin() as transaction:
                connection.execute(
                    insert(webhook_events).values(
                        event_id=f"healthz-{secrets.token_hex(8)}",
                        received_at=dt.datetime.now(dt.UTC),
                    )
                )
                transaction.rollback()
    except SQLAlchemyError as error:
        problem = _first_line(error)
    with _probe_lock:
        _write_probes[engine] = (now, problem)
    return problem


def _first_line(error: SQLAlchemyError) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
