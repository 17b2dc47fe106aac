"""Fixtures of the web app suite.

The Flask test-client tests run on SQLite always and on PostgreSQL when
NEWSLETTER_TEST_POSTGRES_URL is set (each test in a fresh schema of its own).

- ``app``: the app over the example project, mail going to its outbox Maildir.
- ``client``: a Flask test client; ``scanner``: another one with no cookies, as a
  mail gateway or a mailbox provider's one-click POST would be.
- ``site``: the app's services (store, signer, links...).
- ``outbox``: the mail the app sent, read from the Maildir once its postman is idle.
- ``webhook``: signs and posts SendGrid event batches with a key the app trusts.
- ``make_hook``: Postmark's, Mailgun's or SES's webhook on an app of its own.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from newsletter.config import Config
from newsletter.models import Subscriber
from newsletter.send.mail_queue import due_now
from newsletter.web import create_app, shutdown
from newsletter.web.context import EXTENSION, Services
from tests.fakes.sns import FakeSns
from tests.web.hooks import (
    MAILGUN_KEY,
    POSTMARK_PASSWORD,
    SES_TOPIC,
    Hook,
    MailgunHook,
    PostmarkHook,
    SendGridHook,
    SesHook,
    post_to_sendgrid,
)

SECRET = "test-secret-key-for-the-web-suite-0123456789"
KEY_ENV = "SENDGRID_WEBHOOK_PUBLIC_KEY"


@pytest.fixture(scope="session")
def webhook_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_text(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return SECRET


@pytest.fixture
def web_config(config: Config, database_url: str) -> Config:
    return config.model_copy(update={"database_url": database_url})


@pytest.fixture
def app(
    web_config: Config,
    secret: str,
    webhook_private_key: ec.EllipticCurvePrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    monkeypatch.setenv(KEY_ENV, public_key_text(webhook_private_key))
    app = create_app(web_config, {"TESTING": True})
    yield app
    shutdown(app)


@pytest.fixture
def make_app(secret: str) -> Iterator[Callable[..., Flask]]:
    """``create_app`` for tests that build their own; closed afterwards."""
    made: list[Flask] = []

    def make(config: Config, test_config: dict[str, Any] | None = None) -> Flask:
        made.append(create_app(config, test_config))
        return made[-1]

    yield make
    for app in made:
        shutdown(app)


@pytest.fixture
def site(app: Flask) -> Services:
    return app.extensions[EXTENSION]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def scanner(app: Flask) -> FlaskClient:
    return app.test_client(use_cookies=False)


@pytest.fixture
def subscriber(site: Services) -> Subscriber:
    return site.store.add(
        "ada@example.org", name="Ada Lovelace", topics=("research", "stories"), source="test"
    )


def csrf_of(response: TestResponse) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.found.append(dict(attrs))


def inputs_of(response: TestResponse) -> list[dict[str, str | None]]:
    """The page's <input> elements, as attribute dicts (a boolean one maps to None)."""
    parser = _Inputs()
    parser.feed(response.get_data(as_text=True))
    return parser.found


def checked_topics(response: TestResponse) -> dict[str, bool]:
    """Topic checkbox value -> whether it is ticked."""
    return {
        str(field["value"]): "checked" in field
        for field in inputs_of(response)
        if field.get("name") == "topics"
    }


def events_of(site: Services, subscriber_id: int) -> list[dict[str, Any]]:
    """The subscriber's history, as the store records it."""
    subscriber = site.store.get(subscriber_id)
    assert subscriber is not None
    return site.store.describe(subscriber.email)["events"]


DRAIN_SECONDS = 90  # within pytest-timeout's two minutes a test


@dataclass
class Outbox:
    site: Services

    def messages(self) -> list[EmailMessage]:
        """Every message sent so far, oldest first: once the mail threads have sent every
        letter due. They may take long on a loaded machine (the first letter renders
        the templates); a letter still queued after :data:`DRAIN_SECONDS` fails here,
        not as a message count that is short by one."""
        self.site.postman.drain(timeout=DRAIN_SECONDS)
        assert due_now(self.site.store.engine) == 0, f"mail still queued after {DRAIN_SECONDS} s"
        folder = self.site.config.outbox_dir / "new"
        if not folder.exists():
            return []
        paths = sorted(folder.iterdir(), key=lambda path: path.stat().st_mtime_ns)
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in paths
        ]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def link_in(message: EmailMessage, path: str) -> str:
    """The site-relative link to ``path`` (``/confirm/``, ``/p/``) in the message text."""
    match = re.search(r"https?://[^/\s]+(" + re.escape(path) + r"[^\s]+)", text_of(message))
    assert match, f"no {path} link in:\n{text_of(message)}"
    return match.group(1)


@pytest.fixture
def outbox(site: Services) -> Outbox:
    return Outbox(site)


@pytest.fixture
def make_hook(
    web_config: Config,
    make_app: Callable[..., Flask],
    webhook_private_key: ec.EllipticCurvePrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Hook]]:
    """``make_hook(provider, base=None, **settings)``: SendGrid's, Postmark's, Mailgun's
    or SES's webhook on an app of its own over ``base`` (the web config by default) whose
    ``<provider>:`` settings are updated with ``settings``, its secrets set (see
    tests/web/hooks/)."""
    fakes: list[FakeSns] = []
    monkeypatch.setenv("POSTMARK_WEBHOOK_PASSWORD", POSTMARK_PASSWORD)
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", MAILGUN_KEY)
    monkeypatch.setenv(KEY_ENV, public_key_text(webhook_private_key))

    def make(provider: str, *, base: Config | None = None, **settings: Any) -> Hook:
        config = base or web_config
        if provider == "ses":
            fakes.append(FakeSns())
            settings = {"sns_topic_arns": [SES_TOPIC], "sns_url_prefix": fakes[-1].url, **settings}
        section = getattr(config, provider).model_copy(update=settings)
        app = make_app(config.model_copy(update={provider: section}), {"TESTING": True})
        if provider == "ses":
            return SesHook(app, fakes[-1])
        if provider == "sendgrid":
            return SendGridHook(app, webhook_private_key)
        return PostmarkHook(app) if provider == "postmark" else MailgunHook(app)

    yield make
    for fake in fakes:
        fake.close()


Webhook = Callable[..., TestResponse]


@pytest.fixture
def webhook(client: FlaskClient, webhook_private_key: ec.EllipticCurvePrivateKey) -> Webhook:
    def post(
        events: list[dict[str, Any]] | bytes,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> TestResponse:
        return post_to_sendgrid(
            client, events, key=key or webhook_private_key, timestamp=timestamp,
            signature=signature,
        )  # fmt: skip

    return post
