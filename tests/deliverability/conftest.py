"""Fixtures of the deliverability suite: a real DNS server with the sender's zone, the
real web app over HTTPS with a test CA, and DKIM keys.

- ``zone``: the records of a domain ready to send through its SMTP relay (SPF, DKIM,
  DMARC, MX, the site's address); tests break one record at a time.
- ``dns``: a FakeDns serving ``zone`` on 127.0.0.1 (``dns.nameserver`` for --nameserver).
- ``signing_key``: a 2048-bit DKIM key, made once per session.
- ``site``: the web app over TLS, its certificate from ``test_ca`` (``site.port``).
- ``configure(**settings)``: the example project set up for SMTP with smtp.dkim, its
  site_url on the HTTPS server; returns the config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.config import Config, load_config
from newsletter.deliverability.dkim_keys import SigningKey
from newsletter.web import create_app, shutdown
from tests.fakes.dns import FakeDns, Records
from tests.fakes.tls import HttpsServer, TestCA
from tests.send.conftest import merge

DOMAIN = "breastfeedingworld.example"
RELAY = f"mail.{DOMAIN}"
RELAY_ADDRESS = "192.0.2.25"  # TEST-NET-1: matched against SPF, never contacted
SITE_HOST = f"news.{DOMAIN}"
SECRET = "test-secret-key-for-the-doctor-0123456789"
SENDGRID_KEY_TARGET = "s{n}.domainkey.u1234.wl123.sendgrid.net"


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(DOMAIN, "s1", key, "test")


def good_zone(key: SigningKey) -> Records:
    """A domain ready to send through its own relay with newsletter's DKIM signing."""
    return {
        DOMAIN: [
            ("TXT", f"v=spf1 a:{RELAY} include:_spf.{DOMAIN} -all"),
            ("TXT", "google-site-verification=abc123"),
            ("MX", f"10 mx.{DOMAIN}"),
        ],
        f"_spf.{DOMAIN}": [("TXT", "v=spf1 ip4:198.51.100.0/24 ~all")],
        RELAY: [("A", RELAY_ADDRESS)],
        f"mx.{DOMAIN}": [("A", "192.0.2.26")],
        key.record_name: [("TXT", key.txt_record)],
        f"_dmarc.{DOMAIN}": [("TXT", f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}")],
        SITE_HOST: [("A", "127.0.0.1")],
        # SendGrid's side, for the SendGrid set-up.
        "sendgrid.net": [("TXT", "v=spf1 ip4:167.89.0.0/17 ip4:149.72.0.0/16 ~all")],
        **{SENDGRID_KEY_TARGET.format(n=n): [("TXT", key.txt_record)] for n in (1, 2)},
    }


@pytest.fixture
def dns(signing_key: SigningKey) -> Iterator[FakeDns]:
    with FakeDns(good_zone(signing_key)) as server:
        yield server


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def site(config: Config, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsServer]:
    """The real web app (its one-click endpoint) on HTTPS, with a certificate for
    news.breastfeedingworld.example from the test CA."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    app = create_app(config)
    with HttpsServer(app, test_ca.issue(SITE_HOST)) as server:
        yield server
    shutdown(app)


@pytest.fixture
def key_file(project: Path, signing_key: SigningKey) -> Path:
    path = project / "dkim" / "s1.pem"
    path.parent.mkdir()
    path.write_bytes(
        signing_key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def configure(project: Path, key_file: Path, site: HttpsServer) -> Callable[..., Config]:
    def configure(**settings: Any) -> Config:
        path = project / "newsletter.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        ready = {
            "provider": "smtp",
            "site_url": f"https://{SITE_HOST}:{site.port}",
            "smtp": {
                "host": RELAY,
                "dkim": {"selector": "s1", "private_key_file": "dkim/s1.pem"},
            },
            "bounces": {"address": f"bounces@{DOMAIN}"},
            "mailbox": {"url": f"imaps://bounces@imap.{DOMAIN}/INBOX"},
        }
        path.write_text(yaml.safe_dump(merge(merge(data, ready), settings)), encoding="utf-8")
        return load_config(path)

    return configure
