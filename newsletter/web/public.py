"""Pages about no one in particular: the public site (home page, web versions of the
sent issues, feeds, sitemap), the images, the logo, and ``/healthz``."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
import weakref
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    redirect,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine, insert, literal, select
from sqlalchemy.exc import SQLAlchemyError

from newsletter.render.images import asset_file
from newsletter.store.schema import webhook_events
from newsletter.web.context import services
from newsletter.web.security import use_site_policy

log = logging.getLogger(__name__)

blueprint = Blueprint("public", __name__)

ARCHIVE_MAX_AGE = 300  # seconds: the same for every reader, so caches may keep it
IMAGE_MAX_AGE = 86400
# What mail and the archive link to; never the config, the database or the outbox.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})


# The public site (newsletter.site): the same files `newsletter site build` writes.
@blueprint.get("/", defaults={"path": "index.html"}, endpoint="home")
@blueprint.get("/archive/<slug>/", endpoint="archive")
@blueprint.get("/years/<int:year>/", endpoint="year")
@blueprint.get("/<any('feed.xml', 'rss.xml', 'sitemap.xml', 'robots.txt'):path>")
@blueprint.get("/topics/<topic>/<any('feed.xml', 'rss.xml'):name>", endpoint="topic_feed")
def site_file(
    path: str = "",
    slug: str | None = None,
    topic: str | None = None,
    name: str = "",
    year: int | None = None,
) -> Response:
    if year is not None:
        path = f"years/{year}/index.html"
    elif slug is not None:
        path = f"archive/{slug}/index.html"
    elif topic is not None:
        path = f"topics/{topic}/{name}"
    made = services().site.current().file(path)
    if made is None:
        abort(404)
    response = Response(made.content, content_type=made.media_type)
    response.headers["Cache-Control"] = f"public, max-age={ARCHIVE_MAX_AGE}"
    if made.media_type.startswith("text/html"):
        use_site_policy(services().config.site_url)
    return response


@blueprint.get("/archive")
def archive_index() -> ResponseReturnValue:
    return redirect(url_for("public.home"), code=301)


@blueprint.get("/assets/<path:path>")
def asset(path: str) -> Response:
    """An image of a sent issue (as mailed or as its web page shows it) or the brand's
    logo, where ``assets_url`` points by default (``site_url/assets``), so the images in
    mail and on the site work without uploading them elsewhere."""
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        abort(404)
    site = services()
    found = asset_file(site.config.root, path)
    if found is None or found not in site.site.current().public_files():
        abort(404)  # a draft's image, a document's: not published
    response = send_file(found, max_age=IMAGE_MAX_AGE)
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
