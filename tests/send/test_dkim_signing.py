"""DKIM signing of SMTP mail (smtp.dkim), verified by dkimpy against a real DNS server
on 127.0.0.1 and, where it is installed, by SpamAssassin (DKIM_VALID, DKIM_VALID_AU)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.deliverability.dkim_keys import SigningKey, generate_key
from newsletter.deliverability.dns_lookup import Dns
from newsletter.tokens import Signer
from tests.conftest import skip_or_fail
from tests.fakes.dns import FakeDns
from tests.fakes.smtp import FakeSmtp
from tests.send.conftest import SEED

DOMAIN = "breastfeedingworld.example"
SIGNED = [
    "from",
    "reply-to",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "feedback-id",
    "mime-version",
    "content-type",
]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey(DOMAIN, "s1", generate_key(2048), "test")


def pem(key: SigningKey) -> bytes:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def dns(key: SigningKey) -> Iterator[FakeDns]:
    with FakeDns({key.record_name: [("TXT", key.txt_record)]}) as server:
        yield server


def verifier(dns: FakeDns) -> Callable[[bytes], bool]:
    """dkimpy's verify, fetching keys from the local DNS server."""
    resolver = Dns(dns.nameserver)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        texts = resolver.txt(name.decode().rstrip("."))
        return texts[0].encode() if texts else b""

    return lambda message: bool(dkim.verify(message, dnsfunc=dnsfunc))


@pytest.fixture
def signed_send(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    secret: Signer,
    project: Path,
    key: SigningKey,
) -> Callable[..., list[bytes]]:
    """Send the seed issue to ``count`` readers through SMTP with smtp.dkim; the raw
    messages as they arrived."""

    def send(count: int = 3, **dkim_settings: str) -> list[bytes]:
        (project / "s1.pem").write_bytes(pem(key))
        settings = {"selector": "s1", "private_key_file": "s1.pem", **dkim_settings}
        configure(
            provider="smtp",
            smtp={
                "host": smtp_server.host,
                "port": smtp_server.port,
                "security": "none",
                "dkim": settings,
            },
        )
        subscribers(count)
        result = runner.invoke(cli, ["send", SEED, "--yes"])
        assert result.exit_code == 0, result.output
        return [arrival.data for arrival in smtp_server.arrivals]

    return send


def test_every_message_is_signed_and_verifies_against_the_published_key(
    signed_send: Callable[..., list[bytes]], dns: FakeDns
) -> None:
    messages = signed_send(3)

    verify = verifier(dns)
    assert len(messages) == 3
    for message in messages:
        assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; ")
        assert verify(message)
        tags = dkim.util.parse_tag_value(message.split(b"\r\n\r\n")[0].split(b"From:")[0][16:])
        assert tags[b"d"] == DOMAIN.encode() and tags[b"s"] == b"s1"
        signed = re.sub(rb"\s", b"", tags[b"h"]).decode().split(":")
        assert signed[: len(SIGNED)] == SIGNED
    assert (f"s1._domainkey.{DOMAIN}", "TXT") in dns.questions


def test_a_changed_or_added_header_breaks_the_signature(
    signed_send: Callable[..., list[bytes]], dns: FakeDns
) -> None:
    [message] = signed_send(1)
    verify = verifier(dns)

    changed = message.replace(b"Subject: Stem Cells", b"Subject: Stem Calls", 1)
    # A second Subject above the first (where a receiver shows it): oversigned, so it fails.
    head, _, body = message.partition(b"\r\n\r\n")
    added = head.replace(b"\r\nFrom:", b"\r\nSubject: Win a prize\r\nFrom:", 1) + b"\r\n\r\n" + body
    body_changed = message.replace(b"Hi Reader,", b"Hi Robber,", 1)

    assert verify(message)
    assert not verify(changed)
    assert not verify(added)
    assert not verify(body_changed)


def test_the_key_can_come_from_the_environment(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    secret: Signer,
    key: SigningKey,
    dns: FakeDns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY", pem(key).decode())
    configure(
        provider="smtp",
        smtp={
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "dkim": {"selector": "s1"},
        },
    )
    subscribers(1)

    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0

    assert verifier(dns)(smtp_server.arrivals[0].data)


@pytest.mark.parametrize(
    ("key_text", "says"),
    [
        (None, "export NEWSLETTER_DKIM_KEY with the PEM private key, or set private_key_file"),
        ("not a key", "not a PEM private key; make one with 'newsletter dkim keygen'"),
        ("short", "the key has 768 bits; receivers ignore DKIM keys under 1024 bits"),
        ("encrypted", "the private key is encrypted; DKIM signing needs it without a passphrase"),
    ],
)
def test_a_key_that_cannot_sign_stops_the_send_before_anything_goes_out(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
    key_text: str | None,
    says: str,
) -> None:
    if key_text == "short":
        # cryptography makes no keys under 1024 bits; OpenSSL still does.
        key_text = subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:768"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    elif key_text == "encrypted":
        key_text = (
            generate_key(1024)
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            )
            .decode()
        )
    if key_text is not None:
        monkeypatch.setenv("NEWSLETTER_DKIM_KEY", key_text)
    configure(
        provider="smtp",
        smtp={"host": smtp_server.host, "port": smtp_server.port, "dkim": {"selector": "s1"}},
    )
    subscribers(2)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert says in result.output
    assert "Traceback" not in result.output
    assert smtp_server.arrivals == []


@pytest.mark.slow  # SpamAssassin loads its rules: seconds
def test_spamassassin_finds_a_valid_aligned_signature(
    signed_send: Callable[..., list[bytes]], dns: FakeDns, tmp_path: Path
) -> None:
    if shutil.which("spamassassin") is None:
        skip_or_fail("SpamAssassin is not installed (apt-get install spamassassin)")
    [message] = signed_send(1)
    # The local DNS server is SpamAssassin's only nameserver: every other question it
    # asks (blocklists) gets NXDOMAIN from it, and nothing leaves the machine.
    settings = [
        f"dns_server 127.0.0.1:{dns.port}",
        "dns_available yes",
        "skip_rbl_checks 1",
        "use_bayes 0",
    ]
    prefs = tmp_path / "user_prefs"  # not the user's own ~/.spamassassin
    prefs.write_text("")
    result = subprocess.run(
        ["spamassassin", "-p", str(prefs), "-t", *(f"--cf={line}" for line in settings)],
        input=message,
        capture_output=True,
        timeout=120,
        check=False,
    )

    status = _spam_status(result.stdout)
    assert "DKIM_SIGNED" in status, result.stderr.decode()[-2000:]
    assert "DKIM_VALID" in status
    assert "DKIM_VALID_AU" in status
    assert (f"s1._domainkey.{DOMAIN}", "TXT") in dns.questions


def _spam_status(output: bytes) -> set[str]:
    """The rule names in the X-Spam-Status header SpamAssassin added (-t)."""
    head = output.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
    match = re.search(r"^X-Spam-Status:.*?tests=(.*?)\sautolearn=", head, re.M | re.S)
    assert match is not None, head
    return set(re.sub(r"\s", "", match[1]).split(","))
