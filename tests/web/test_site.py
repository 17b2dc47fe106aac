"""What every page shares: headers, errors, branding, templates; and the public pages."""

from __future__ import annotations

import base64
import hashlib
import importlib
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import TokenError
from newsletter.models import Subscriber
from newsletter.tokens import DEVELOPMENT_SECRET
from newsletter.web import create_app, shutdown
from newsletter.web.context import EXTENSION, Services
from newsletter.web.limits import client_key
from newsletter.web.pages import readable_on
from tests.site.publishing import publish

SEED_SLUG = "stem-cells-in-breast-milk"
ATOM = "{http://www.w3.org/2005/Atom}"


def test_pages_send_the_security_headers(client: FlaskClient) -> None:
    response = client.get("/subscribe")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'none'" in policy  # this page has no script
    assert "style-src 'sha256-" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_inline_stylesheet_is_allowed_by_its_hash(client: FlaskClient) -> None:
    response = client.get("/subscribe")

    stylesheet = re.search(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S)
    assert stylesheet
    digest = base64.b64encode(hashlib.sha256(stylesheet.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in response.headers["Content-Security-Policy"]


def test_a_script_in_a_project_template_gets_a_fresh_nonce_in_each_response(
    project: Path, web_config: Config, make_app: Callable[..., Flask]
) -> None:
    override = project / "templates" / "web" / "manage.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(
        '{% extends "base.html" %}{% block main %}'
        '<script nonce="{{ csp_nonce() }}">document.title = "x";</script>{% endblock %}',
        encoding="utf-8",
    )
    client = make_app(web_config).test_client()

    nonces = [
        re.search(
            r"script-src 'nonce-([^']+)'", client.get("/manage").headers["Content-Security-Policy"]
        )
        for _ in range(2)
    ]

    assert nonces[0] and nonces[1]
    assert nonces[0].group(1) != nonces[1].group(1)


def test_personal_pages_are_never_cached(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    for path in (
        f"/u/{site.signer.unsubscribe_token(subscriber.id, None, subscriber.link_key)}",
        f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}",
    ):
        assert client.get(path).headers["Cache-Control"] == "no-store"


def test_the_session_cookie_is_http_only_and_same_site(client: FlaskClient) -> None:
    cookie = client.get("/subscribe").headers["Set-Cookie"]

    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the site_url of the example is https


def test_an_unexpected_error_shows_a_plain_page_and_no_traceback(
    client: FlaskClient, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(site.store, "holder", broken)

    response = client.get(f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}")

    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side." in page
    assert "Traceback" not in page and "hunter2" not in page
    assert response.headers["X-Frame-Options"] == "DENY"


def test_an_unknown_page_and_a_wrong_method(client: FlaskClient) -> None:
    missing = client.get("/nothing-here")
    wrong = client.delete("/subscribe")

    assert missing.status_code == 404
    assert "This page does not exist" in missing.get_data(as_text=True)
    assert wrong.status_code == 405
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_pages_are_branded_and_accessible(client: FlaskClient, config: Config) -> None:
    page = client.get("/subscribe").get_data(as_text=True)

    assert '<html lang="en" dir="ltr">' in page
    assert "<title>Subscribe · Breastfeeding World</title>" in page
    assert config.postal_address in page
    assert "--primary: #9d3a63;" in page
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main" tabindex="-1">' in page
    assert '<label for="email">Email address</label>' in page
    assert '<img src="/brand/logo"' in page


def test_button_text_stays_readable_on_any_brand_colour() -> None:
    assert readable_on("#9d3a63") == "#ffffff"
    assert readable_on("#ffe14d") == "#000000"
    assert readable_on("#fff") == "#000000"


def test_the_logo_is_served_from_the_project(client: FlaskClient, project: Path) -> None:
    with client.get("/brand/logo") as response:
        assert response.status_code == 200
        assert response.data == (project / "issues/images/logo.png").read_bytes()
        assert response.headers["Cache-Control"] == "public, max-age=86400"


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_a_project_template_overrides_the_bundled_one(
    project: Path, web_config: Config, make_app: Callable[..., Flask]
) -> None:
    override = project / "templates" / "web" / "check_inbox.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(
        '{% extends "base.html" %}{% block main %}<h1>Look for our letter, {{ email }}</h1>'
        "{% endblock %}",
        encoding="utf-8",
    )
    client = make_app(web_config).test_client()
    token = client.get("/manage").get_data(as_text=True).split('name="csrf_token" value="')[1]

    page = client.post(
        "/manage", data={"csrf_token": token.split('"')[0], "email": "x@example.org"}
    ).get_data(as_text=True)

    assert "<h1>Look for our letter, x@example.org</h1>" in page
    assert "Breastfeeding World, PO Box 1234" in page  # the bundled base.html still applies


def test_the_app_refuses_to_start_without_the_secret_key(web_config: Config) -> None:
    with pytest.raises(TokenError, match="NEWSLETTER_SECRET_KEY is not set"):
        create_app(web_config)


def test_serve_without_the_secret_key_is_one_error_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve", "--port", "0"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: NEWSLETTER_SECRET_KEY is not set: links in mail")
    assert "Traceback" not in result.output


def test_serve_with_a_malformed_webhook_key_names_the_variable(
    runner: CliRunner, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "not a key")

    result = runner.invoke(cli, ["serve", "--port", "0"])

    assert result.exit_code == 1
    assert result.output == (
        "Error: SENDGRID_WEBHOOK_PUBLIC_KEY: not an ECDSA P-256 public key; copy the "
        "verification key from SendGrid's Mail Settings > Signed Event Webhook\n"
    )


def test_serve_has_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve", "--help"])

    assert result.exit_code == 0
    assert "Serve the subscriber web app" in result.output
    assert "--port" in result.output


def test_app_factory_takes_test_config(web_config: Config, make_app: Callable[..., Flask]) -> None:
    app = make_app(web_config, {"TESTING": True, "SERVER_NAME": "news.example"})

    assert isinstance(app, Flask)
    assert app.config["SERVER_NAME"] == "news.example"


def test_issue_images_are_served_where_assets_url_points_by_default(
    client: FlaskClient, project: Path, site: Services
) -> None:
    publish(site.config, site.store, project / "issues/2026-11-26-stem-cells-in-breast-milk.md")
    with client.get("/assets/issues/images/stem-cells-hero.jpg") as response:
        assert response.status_code == 200
        assert response.data == (project / "issues/images/stem-cells-hero.jpg").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "newsletter.yaml",
        "newsletter.db",
        "issues/2026-11-26-stem-cells-in-breast-milk.md",
        "../project/issues/images/logo.png",
        "issues/images/missing.png",
    ],
)
def test_nothing_but_project_images_is_served_as_an_asset(client: FlaskClient, path: str) -> None:
    assert client.get(f"/assets/{path}").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "newsletter.db%00.png",  # a NUL byte: Path.resolve() raises ValueError
        "issues/images/" + "x" * 300 + ".png",  # a name too long for the file system
        "issues/images/" + "x/" * 3000 + "a.png",  # a path too long for it
        "issues\\images\\logo.png",
    ],
)
def test_an_odd_asset_path_is_a_plain_404_and_logs_no_traceback(
    client: FlaskClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        assert client.get(f"/assets/{path}").status_code == 404
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
        (None, "unknown"),
    ],
)
def test_a_client_is_its_ip_or_its_ipv6_network(address: str | None, key: str) -> None:
    assert client_key(address) == key


def test_behind_a_proxy_the_forwarded_client_is_recorded_and_https_kept(
    web_config: Config, make_app: Callable[..., Flask]
) -> None:
    behind_proxy = web_config.model_copy(
        update={"web": web_config.web.model_copy(update={"proxy_hops": 1})}
    )
    app = make_app(behind_proxy)
    client = app.test_client()
    proxied = {"X-Forwarded-For": "198.51.100.20", "X-Forwarded-Proto": "https"}

    form = client.get("/subscribe", headers=proxied)
    client.post(
        "/subscribe",
        headers=proxied,
        data={
            "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', form.text)[0],
            "email": "proxied@example.org",
            "topics": ["research"],
            "consent": "yes",
        },
    )
    direct = client.get("/subscribe")

    assert form.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in direct.headers
    record = app.extensions[EXTENSION].store.describe("proxied@example.org")
    assert record["subscribed_ip"] == "198.51.100.20"


def test_the_wsgi_module_builds_the_app_from_the_environment(
    project: Path, database_url: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(project / "newsletter.yaml"))
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.delitem(sys.modules, "newsletter.web.wsgi", raising=False)

    module = importlib.import_module("newsletter.web.wsgi")
    try:
        response = module.app.test_client().get("/healthz")
    finally:
        shutdown(module.app)
        del sys.modules["newsletter.web.wsgi"]

    assert response.json == {"status": "ok"}


def test_only_images_of_published_issues_and_the_brand_are_served(
    client: FlaskClient, site: Services, project: Path
) -> None:
    publish(site.config, site.store, project / "issues/2026-11-26-stem-cells-in-breast-milk.md")
    (project / "docs").mkdir()
    (project / "docs" / "screenshot.png").write_bytes(
        (project / "issues/images/logo.png").read_bytes()
    )
    draft = project / "issues" / "2026-12-24-draft.md"
    draft.write_text(
        "---\ntitle: Not sent yet\nsubject: Soon\n---\n\n![A secret](images/unsent.png)\n",
        encoding="utf-8",
    )
    (project / "issues" / "images" / "unsent.png").write_bytes(b"\x89PNG not yet")

    assert client.get("/assets/docs/screenshot.png").status_code == 404
    assert client.get("/assets/issues/images/unsent.png").status_code == 404
    assert site.config.brand.logo == "issues/images/logo.png"
    with client.get("/assets/issues/images/logo.png") as logo:
        assert logo.status_code == 200


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (DEVELOPMENT_SECRET, "is the public development key"),
        ("k", "is too short (1 characters, at least 32 are needed)"),
    ],
)
def test_serve_refuses_a_weak_secret_key_in_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, key: str, reason: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", key)

    result = runner.invoke(cli, ["serve", "--port", "0"])

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: NEWSLETTER_SECRET_KEY {reason}")
    assert "secrets.token_urlsafe(32)" in result.output
    assert len(result.output.splitlines()) == 1
