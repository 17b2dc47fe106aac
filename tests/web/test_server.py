"""The app behind the real production server (waitress), in a subprocess, over HTTP."""

from __future__ import annotations

import base64
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.models import Subscriber
from newsletter.store import Store, open_store_url
from newsletter.tokens import Signer
from tests.web.conftest import SECRET, public_key_text
from tests.web.live import LiveServer, serve

pytestmark = pytest.mark.slow

TOPICS = ("research", "stories", "events")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, webhook_private_key: ec.EllipticCurvePrivateKey
) -> Iterator[LiveServer]:
    env = {
        "NEWSLETTER_SECRET_KEY": SECRET,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_text(webhook_private_key),
    }
    with serve(tmp_path_factory.mktemp("live"), env=env) as running:
        yield running


@pytest.fixture
def store(server: LiveServer) -> Iterator[Store]:
    opened = open_store_url(server.database_url, TOPICS)
    yield opened
    opened.close()


@pytest.fixture
def reader(store: Store) -> Subscriber:
    return store.add(f"{uuid.uuid4().hex[:10]}@example.org", topics=("research",), source="test")


def unsubscribe_path(reader: Subscriber) -> str:
    return f"/u/{Signer(SECRET).unsubscribe_token(reader.id, 3, reader.link_key)}"


def status_of(store: Store, reader: Subscriber) -> str:
    current = store.get(reader.id)
    assert current is not None
    return current.status


def test_health_and_headers_over_http(server: LiveServer) -> None:
    status, headers, body = server.get("/healthz")

    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert "Server" not in headers  # no software banner
    assert headers["X-Frame-Options"] == "DENY"


def test_a_scanner_get_changes_nothing_over_http(
    server: LiveServer, store: Store, reader: Subscriber
) -> None:
    status, headers, body = server.get(unsubscribe_path(reader))

    assert status == 200
    assert reader.email in body
    assert headers["Cache-Control"] == "no-store"
    assert status_of(store, reader) == "active"


def test_one_click_urlencoded_over_http(
    server: LiveServer, store: Store, reader: Subscriber
) -> None:
    status, headers, body = server.request(
        "POST",
        unsubscribe_path(reader),
        body=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert status == 200
    assert "Location" not in headers
    assert "You are unsubscribed" in body
    assert store.describe(reader.email)["unsubscribe_source"] == "one-click"


def test_one_click_multipart_over_http(
    server: LiveServer, store: Store, reader: Subscriber
) -> None:
    boundary = "----newsletter-test"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()

    status, _, _ = server.request(
        "POST",
        unsubscribe_path(reader),
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert status == 200
    assert status_of(store, reader) == "unsubscribed"


def test_a_tampered_token_over_http(server: LiveServer, reader: Subscriber) -> None:
    path = unsubscribe_path(reader)

    status, _, body = server.get(path[:-2] + "zz")

    assert status == 404
    assert reader.email not in body


def test_a_signed_webhook_over_http(
    server: LiveServer,
    store: Store,
    reader: Subscriber,
    webhook_private_key: ec.EllipticCurvePrivateKey,
) -> None:
    body = json.dumps(
        [{"email": reader.email, "event": "spamreport", "sg_event_id": uuid.uuid4().hex}]
    ).encode()
    stamp = str(int(time.time()))
    signature = webhook_private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }

    unsigned = server.request("POST", "/webhooks/sendgrid", body=body)
    signed = server.request("POST", "/webhooks/sendgrid", body=body, headers=headers)

    assert (unsigned[0], signed[0]) == (403, 200)
    assert status_of(store, reader) == "complained"


def test_the_server_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with serve(tmp_path, env={"NEWSLETTER_SECRET_KEY": SECRET}) as running:
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=60) == 0
        log = running.log.read_text()
    assert f"Serving Breastfeeding World on {running.url}/" in log
    assert "Traceback" not in log
