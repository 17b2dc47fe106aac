"""``create_app(config)``: the subscriber web app, and the production server that runs it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import jinja2
import waitress
from flask import Flask, Response, request
from waitress.server import BaseWSGIServer, MultiSocketServer
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.config import Config, env_secret
from newsletter.languages import N_, catalog_for
from newsletter.send.provider_events import EventProcessor
from newsletter.send.providers import Delivery
from newsletter.send.transactional import send_transactional
from newsletter.site.export import LiveSite
from newsletter.store import open_store
from newsletter.tokens import Links, Signer, require_secret
from newsletter.web import (
    links,
    public,
    signup,
    webhooks,
    webhooks_mailgun,
    webhooks_postmark,
    webhooks_ses,
)
from newsletter.web.clicks import close_clicks, init_clicks
from newsletter.web.context import EXTENSION, Services
from newsletter.web.limits import RateLimiter
from newsletter.web.one_click import OneClickWriter
from newsletter.web.pages import TEMPLATES_DIR, init_pages, page
from newsletter.web.postman import Letter, Postman
from newsletter.web.security import init_security
from newsletter.web.signature import load_public_key

log = logging.getLogger(__name__)

_SHUT_DOWN = "newsletter.shut_down"
# Forms are a few hundred bytes; SendGrid posts event batches of up to a few MB.
MAX_REQUEST_BYTES = 8 * 1024 * 1024

ERROR_MESSAGES = {
    400: (N_("Something is wrong with this request"), N_("Please go back and try again.")),
    403: (N_("Not allowed"), N_("This request is not allowed.")),
    404: (N_("Not found"), N_("This page does not exist, or the link you followed is not valid.")),
    405: (N_("Not allowed"), N_("This page cannot be used that way.")),
    413: (N_("Too large"), N_("This request is too large.")),
    429: (N_("Too many requests"), N_("Please wait a while and try again.")),
    500: (
        N_("Something went wrong"),
        N_("Something went wrong on our side. Please try again later."),
    ),
}
CSRF_MESSAGE = (
    N_("This form has expired"),
    N_(
        "Your browser did not send the form's security check. Please reload the page and "
        "try again; cookies must be allowed for this site."
    ),
)


def create_app(config: Config, test_config: Mapping[str, Any] | None = None) -> Flask:
    """The app for ``config``. Refuses to start without ``NEWSLETTER_SECRET_KEY``."""
    secret = require_secret()
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="newsletter_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.site_url.startswith("https://"),
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )
    app.config.update(test_config or {})

    # Templates: the project's templates/web/ first, then the bundled ones.
    app.jinja_loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(config.templates_dir / "web"),
            jinja2.FileSystemLoader(TEMPLATES_DIR),
        ]
    )
    app.extensions[EXTENSION] = build_services(config, secret)
    init_security(app)
    init_pages(app)
    webhook_modules = (webhooks, webhooks_postmark, webhooks_mailgun, webhooks_ses)
    for module in (links, signup, public, *webhook_modules):
        app.register_blueprint(module.blueprint)
    services_ = app.extensions[EXTENSION]
    init_clicks(app, services_.store, secret, per_subscriber=config.tracking.per_subscriber)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    if config.web.proxy_hops:
        hops = config.web.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


def shutdown(app: Flask) -> None:
    """Finish the app's queued work (mail, one-click unsubscribes, click counts) and close
    its database.

    The work is finished once: a second call (the WSGI module's at exit) queries nothing.
    It still closes the database's pooled connections, which costs no query: whatever
    used the store since the first call (a test reading what it flushed) would otherwise
    leave them to the garbage collector, still open."""
    services = app.extensions[EXTENSION]
    if app.extensions.get(_SHUT_DOWN):
        services.store.close()
        return
    app.extensions[_SHUT_DOWN] = True
    close_clicks(app)
    services.close()


def build_services(config: Config, secret: str) -> Services:
    key_variable = config.sendgrid.webhook_public_key_env
    key_text = env_secret(key_variable)
    webhook_key = load_public_key(key_text, variable=key_variable) if key_text else None
    signer = Signer(secret)
    store = open_store(config)

    def send(letter: Letter) -> Delivery:
        return send_transactional(
            config, to=letter.to, subject=letter.subject, html=letter.html, text=letter.text
        )

    links_ = Links(config, signer)
    return Services(
        config=config,
        catalog=catalog_for(config.language, config.strings),
        signer=signer,
        links=links_,
        store=store,
        limiter=RateLimiter(store.engine),
        postman=Postman(store.engine, send),
        site=LiveSite(config, store),
        events=EventProcessor(store, tracked_by=config.provider_tracking),
        one_click=OneClickWriter(store),
        webhook_key=webhook_key,
    )


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if request.blueprint and request.blueprint.startswith("webhooks"):
        return Response(f"{status} {error.name}\n", status=status, mimetype="text/plain")
    if status == 400 and error.description == "csrf":
        title, message = CSRF_MESSAGE
    else:
        title, message = ERROR_MESSAGES.get(status, (error.name, ""))
    response = page("message.html", status=status, title=title, message=message)
    for name, value in error.get_headers():
        if name in ("Allow", "Retry-After"):
            response.headers[name] = value
    return response


def _unexpected_error(error: Exception) -> Response:
    # Logged in full for the operator; the visitor sees a plain page, never a traceback.
    # The route's pattern, not the path: a path holds a reader's signed link token.
    route = request.url_rule.rule if request.url_rule else "(no route)"
    log.exception("unexpected error on %s %s", request.method, route)
    return _http_error(InternalServerError())


def create_server(
    app: Flask, *, host: str, port: int, threads: int
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server for ``app``; ``port`` 0 picks a free one (see :func:`listening_on`)."""
    # ident="": no Server header telling scanners which software and version answer.
    return waitress.create_server(app, host=host, port=port, threads=threads, ident="")


def listening_on(server: BaseWSGIServer | MultiSocketServer) -> list[str]:
    """The URLs the server answers on (``localhost`` may mean IPv4 and IPv6)."""
    if isinstance(server, MultiSocketServer):
        addresses = list(server.effective_listen or [])
    else:
        addresses = [(server.effective_host, server.effective_port)]
    return [
        f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"
        for host, port in addresses
    ]
