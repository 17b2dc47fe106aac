"""Response headers, the Content-Security-Policy, and CSRF protection.

Every page is served with a strict policy: the one stylesheet is allowed by its hash,
a script runs only where a page carries this response's nonce (no bundled page has
one; a project's template may),
nothing may frame the page, and no Referer leaves it (the tokens are in the URLs).
Pages are personal unless a view says otherwise, so the default is
``Cache-Control: no-store``.

CSRF: each browser form carries a random token that must match the one in the
signed session cookie. The RFC 8058 one-click POST and the SendGrid webhook cannot
carry one; their views are marked :func:`csrf_exempt` and authenticate otherwise
(the signed token in the URL, the webhook signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, request, session

from newsletter.web.context import services

CSRF_FIELD = "csrf_token"
_CSRF_SESSION_KEY = "csrf"

PAGE_POLICY = (
    "default-src 'none'; script-src {script}; style-src {style}; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The public site's pages: their own inline stylesheet, images from anywhere the editor
# linked them, no script, and the one form (Subscribe) goes to the site's signup page.
SITE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self' {site}; frame-ancestors 'none'; base-uri 'none'"
)

View = TypeVar("View", bound=Callable[..., object])


def csp_nonce() -> str:
    """This response's script nonce, made on first use; templates put it on <script>."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def use_site_policy(site_url: str) -> None:
    parts = urlsplit(site_url)
    g.content_security_policy = SITE_POLICY.format(site=f"{parts.scheme}://{parts.netloc}")


def csrf_token() -> str:
    token = session.get(_CSRF_SESSION_KEY)
    if not token:
        token = session[_CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_exempt(view: View) -> View:
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def require_csrf() -> None:
    """Refuse a browser form that does not carry this session's token (400)."""
    expected = session.get(_CSRF_SESSION_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="csrf")


def _check_csrf() -> None:
    if request.method != "POST" or request.endpoint is None:
        return
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "csrf_exempt", False):
        require_csrf()


def style_hash(stylesheet: str) -> str:
    """The CSP source that allows exactly this inline stylesheet."""
    digest = hashlib.sha256(stylesheet.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _page_policy() -> str:
    script = f"'nonce-{g.csp_nonce}'" if "csp_nonce" in g else "'none'"
    return PAGE_POLICY.format(script=script, style=services().style_source)


def _set_headers(response: Response) -> Response:
    policy = g.get("content_security_policy") or _page_policy()
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:  # behind a TLS proxy, with web.proxy_hops set
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_security(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.after_request(_set_headers)
    app.jinja_env.globals.update(csp_nonce=csp_nonce, csrf_token=csrf_token, CSRF_FIELD=CSRF_FIELD)
