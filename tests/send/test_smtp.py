"""Sending through the SMTP provider, to a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.send import campaign_rows
from newsletter.send.transactional import send_transactional
from newsletter.store import Store
from newsletter.tokens import Signer
from tests.fakes.smtp import FakeSmtp
from tests.send.arrivals import check_copies, parts
from tests.send.conftest import SEED


def smtp_config(configure: Callable[..., Config], server: FakeSmtp, **smtp: object) -> Config:
    settings = {"host": server.host, "port": server.port, "security": "none", **smtp}
    return configure(provider="smtp", smtp=settings)


def test_every_recipient_gets_a_personal_multipart_copy(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server)
    ids = subscribers(12)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert smtp_server.received_by() == {f"reader{n}@example.org": 1 for n in range(12)}
    messages = [arrival.message() for arrival in smtp_server.arrivals]
    check_copies(messages, secret, campaign_id=1, subscriber_ids=ids)
    first = next(m for m in messages if m["To"].addresses[0].addr_spec == "reader0@example.org")
    assert str(first["To"]) == "Reader 0 <reader0@example.org>"
    assert str(first["From"]) == "Breastfeeding World <letters@breastfeedingworld.example>"
    assert first["Subject"] == "Stem Cells: The Medicine in Breast Milk?"
    assert first["Message-ID"].endswith("@breastfeedingworld.example>")
    text, html = parts(first)
    assert "Hi Reader," in text and "Hi Reader," in html
    for arrival in smtp_server.arrivals:
        assert arrival.sender == "letters@breastfeedingworld.example"
        assert b"\n" not in arrival.data.replace(b"\r\n", b""), "bare LF on the wire"


def test_connections_are_reused(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server, connections=2)
    configure(sending={"batch_size": 10})
    subscribers(30)

    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0

    assert len(smtp_server.arrivals) == 30
    assert smtp_server.connections <= 2


def test_a_4xx_is_retried_until_accepted(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server)
    subscribers(3)
    smtp_server.defer("reader1@example.org", times=2)
    smtp_server.answer_data("452 4.3.1 Insufficient system storage")

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert smtp_server.received_by() == {f"reader{n}@example.org": 1 for n in range(3)}
    assert smtp_server.rcpt_attempts["reader1@example.org"] == 3


def test_a_recipient_still_deferred_after_the_retries_waits_for_the_next_run(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server)
    subscribers(3)
    smtp_server.defer("reader1@example.org", times=4)  # the first try and three retries

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 2, failed 0, skipped 0, deferred 1, unknown 0" in result.output
    assert "1 recipient(s) were deferred: send again later to retry them." in result.output
    assert campaign_rows.first_errors(store, 1) == [
        ("reader1@example.org", "451 4.3.0 Try again later")
    ]

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert smtp_server.received_by() == {f"reader{n}@example.org": 1 for n in range(3)}


def test_a_5xx_fails_that_recipient_only_and_no_such_user_marks_them_bounced(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server)
    ids = subscribers(4)
    smtp_server.refuse("reader1@example.org", "550 5.1.1 No such user here")
    smtp_server.refuse("reader2@example.org", "554 5.7.1 Rejected by policy")

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 2, failed 2" in result.output
    assert set(smtp_server.received_by()) == {"reader0@example.org", "reader3@example.org"}
    assert store.get(ids[1]).status == "bounced"
    assert store.get(ids[2]).status == "active"  # a policy refusal is no bounce

    result = runner.invoke(cli, ["status"])
    assert "error: reader1@example.org: 550 5.1.1 No such user here" in result.output
    assert "error: reader2@example.org: 554 5.7.1 Rejected by policy" in result.output


def test_an_unreachable_server_pauses_the_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    server = FakeSmtp().start()
    port = server.port
    server.stop()  # nothing listens on the port any more
    configure(provider="smtp", smtp={"host": "127.0.0.1", "port": port, "security": "none"})
    subscribers(2)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        f"Error: the SMTP server 127.0.0.1:{port} did not take messages after 4 attempts"
    )
    assert campaign_rows.state_counts(store, 1)["pending"] == 2


def test_a_refused_login_stops_the_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    monkeypatch: pytest.MonkeyPatch,
    secret: Signer,
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    with FakeSmtp(credentials=("sender", "right")) as server:
        smtp_config(configure, server, username="sender")
        subscribers(2)

        result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: the SMTP server 127.0.0.1:{server.port} refused the login of 'sender' "
        "(535 5.7.8 Authentication credentials invalid); check smtp.username and "
        "SMTP_PASSWORD; the campaign stopped and everyone not yet sent stays pending: send "
        "again once that is fixed"
    )
    assert server.arrivals == []


def test_a_username_without_a_password_is_refused_before_connecting(
    configure: Callable[..., Config], smtp_server: FakeSmtp
) -> None:
    config = smtp_config(configure, smtp_server, username="sender")

    with pytest.raises(ConfigError, match=r"smtp\.username is set but SMTP_PASSWORD is not;"):
        send_transactional(config, to="a@example.org", subject="Hi", html="<p>x</p>", text="x")


def test_starttls_and_login(
    configure: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    certificate, server_context = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # the client trusts our test CA
    monkeypatch.setenv("SMTP_PASSWORD", "right")
    with FakeSmtp(tls_context=server_context, credentials=("sender", "right")) as server:
        config = smtp_config(configure, server, security="starttls", username="sender")

        delivery = send_transactional(
            config, to="new@example.org", subject="Confirm", html="<p>Confirm</p>", text="Confirm"
        )

    assert delivery.status == "sent"
    [arrival] = server.arrivals
    message = arrival.message()
    assert message["Subject"] == "Confirm"
    assert message["List-Unsubscribe"] is None  # transactional: no list headers


def self_signed_certificate(folder: Path) -> tuple[Path, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def test_test_sends_need_no_signing_key(
    runner: CliRunner, configure: Callable[..., Config], smtp_server: FakeSmtp
) -> None:
    smtp_config(configure, smtp_server)

    result = runner.invoke(cli, ["send", SEED, "--test", "editor@example.org"])

    assert result.exit_code == 0, result.output
    [arrival] = smtp_server.arrivals
    assert arrival.message()["Subject"] == "[TEST] Stem Cells: The Medicine in Breast Milk?"


def test_implicit_tls(
    configure: Callable[..., Config], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    certificate, server_context = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    with FakeSmtp(tls_context=server_context, implicit_tls=True) as server:
        config = smtp_config(configure, server, security="ssl")

        delivery = send_transactional(
            config, to="new@example.org", subject="Hi", html="<p>Hi</p>", text="Hi"
        )

    assert delivery.status == "sent"
    assert len(server.arrivals) == 1


def test_a_421_drops_the_connection_and_the_message_goes_on_a_new_one(
    configure: Callable[..., Config], smtp_server: FakeSmtp
) -> None:
    config = smtp_config(configure, smtp_server, connections=1)
    smtp_server.answer_data("421 4.3.2 Service shutting down")

    delivery = send_transactional(config, to="a@example.org", subject="Hi", html="x", text="x")

    assert delivery.status == "sent"
    assert smtp_server.received_by() == {"a@example.org": 1}
    assert smtp_server.connections == 2


def test_the_rate_holds_across_parallel_connections(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server, connections=4)
    subscribers(21)

    started = time.monotonic()
    result = runner.invoke(cli, ["send", SEED, "--yes", "--rate", "40"])

    assert result.exit_code == 0, result.output
    assert len(smtp_server.arrivals) == 21
    # 21 messages at 40/s between them: half a second, whatever the connection count.
    assert time.monotonic() - started >= 0.5
