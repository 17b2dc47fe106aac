"""The doctor's HTTPS check of site_url: a certificate that verifies (with a test CA
trusted explicitly, never with verification off) and a one-click endpoint that answers
a POST without redirecting (RFC 8058)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from newsletter.config import Config
from newsletter.deliverability.doctor import diagnose
from newsletter.deliverability.findings import Finding
from tests.deliverability.conftest import SITE_HOST
from tests.fakes.dns import FakeDns
from tests.fakes.tls import HttpsServer, TestCA

Configure = Callable[..., Config]

pytestmark = pytest.mark.slow  # TLS servers and the web app for each test


def site_findings(config: Config, dns: FakeDns, ca: TestCA | None) -> list[Finding]:
    diagnosis = diagnose(config, nameserver=dns.nameserver, ca_file=ca.pem if ca else None)
    return [f for f in diagnosis.findings if f.check in ("https", "one-click")]


def test_the_real_web_app_answers_the_signed_probe_and_nobody_is_unsubscribed(
    configure: Configure, dns: FakeDns, test_ca: TestCA, config: Config
) -> None:
    from newsletter.store import open_store

    store = open_store(config)
    reader = store.add("reader@example.org", topics=["research"], status="active")
    config = configure()

    findings = site_findings(config, dns, test_ca)

    assert [(f.check, f.level) for f in findings] == [("https", "ok"), ("one-click", "ok")]
    assert findings[1].message == "POST /u/<probe> answered 200: one-click unsubscribe works"
    got = store.get(reader.id)
    assert got is not None and got.status == "active"
    store.close()


def test_without_the_secret_key_the_probe_still_shows_the_endpoint_takes_posts(
    configure: Configure, dns: FakeDns, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure()
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")  # the site keeps its own

    [_https, one_click] = site_findings(config, dns, test_ca)

    assert one_click.level == "ok"
    assert one_click.message.startswith(
        "POST /u/<probe> answered 404, as it must to a probe signed without the site's key"
    )


def test_a_certificate_from_an_unknown_ca_is_an_error(configure: Configure, dns: FakeDns) -> None:
    config = configure()

    [https] = site_findings(config, dns, None)  # the test CA is not trusted here

    assert https.level == "error"
    assert f"the certificate of {SITE_HOST}:" in https.message
    assert "does not verify (unable to get local issuer certificate)" in https.message


@pytest.fixture
def other_site(
    test_ca: TestCA, request: pytest.FixtureRequest
) -> Iterator[Callable[..., HttpsServer]]:
    started: list[HttpsServer] = []

    def start(app: Any, *, host: str = SITE_HOST, days: int = 90) -> HttpsServer:
        server = HttpsServer(app, test_ca.issue(host, days=days)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def answering(status: str, headers: Iterable[tuple[str, str]] = ()) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [b"answer"]

    return app


@pytest.mark.parametrize(
    ("host", "days", "level", "says"),
    [
        ("other.example.org", 90, "error", "does not verify (Hostname mismatch"),
        (SITE_HOST, -1, "error", "does not verify (certificate has expired)"),
        (SITE_HOST, 5, "warning", "expires in"),
    ],
)
def test_certificates_that_browsers_and_mailbox_providers_refuse(
    configure: Configure,
    dns: FakeDns,
    test_ca: TestCA,
    other_site: Callable[..., HttpsServer],
    host: str,
    days: int,
    level: str,
    says: str,
) -> None:
    server = other_site(answering("200 OK"), host=host, days=days)
    config = configure(site_url=f"https://{SITE_HOST}:{server.port}")

    https = site_findings(config, dns, test_ca)[0]

    assert https.level == level
    assert says in https.message


@pytest.mark.parametrize(
    ("status", "level", "says"),
    [
        ("302 Found", "error", "a redirect (to https://elsewhere.example/): RFC 8058 forbids"),
        ("405 Method Not Allowed", "error", "the site does not take POSTs there"),
        ("500 Internal Server Error", "error", "RFC 8058 one-click needs a 200"),
    ],
)
def test_one_click_answers_that_do_not_work(
    configure: Configure,
    dns: FakeDns,
    test_ca: TestCA,
    other_site: Callable[..., HttpsServer],
    status: str,
    level: str,
    says: str,
) -> None:
    server = other_site(answering(status, [("Location", "https://elsewhere.example/")]))
    config = configure(site_url=f"https://{SITE_HOST}:{server.port}")

    one_click = site_findings(config, dns, test_ca)[1]

    assert one_click.level == level
    assert says in one_click.message


def test_an_http_site_url_is_an_error(configure: Configure, dns: FakeDns) -> None:
    config = configure(site_url=f"http://{SITE_HOST}")

    [https] = site_findings(config, dns, None)

    assert https.level == "error"
    assert "one-click unsubscribe (RFC 8058) must be an HTTPS URL" in https.message


def test_a_site_name_without_an_address_is_an_error(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure()
    dns.set(SITE_HOST, "A")

    [https] = site_findings(config, dns, test_ca)

    assert https.level == "error"
    assert f"{SITE_HOST} (site_url) has no A or AAAA record" in https.message
