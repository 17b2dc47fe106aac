"""A test certificate authority, and any WSGI app served over HTTPS on 127.0.0.1.

    ca = TestCA()                                   # a CA nobody else trusts
    cert = ca.issue("news.example.org")             # key + certificate, files in a folder
    with HttpsServer(app, cert) as server:          # werkzeug, TLS, in a thread
        server.port

Verification stays on everywhere: a client trusts ``ca.pem`` explicitly.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server

from tests.fakes import LocalServer


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        return context


class TestCA:
    __test__ = False  # not a test class, despite the name

    def __init__(self, folder: Path | None = None, name: str = "Newsletter Test CA") -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="test-ca-"))
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.folder / "ca.pem"
        self.pem.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, host: str, *, days: int = 90) -> IssuedCertificate:
        """A server certificate for ``host``, valid for ``days`` from yesterday (negative:
        already expired)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=2))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = f"{host}-{days}"
        certificate_path = self.folder / f"{stem}.pem"
        key_path = self.folder / f"{stem}.key"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return IssuedCertificate(certificate_path, key_path)


class HttpsServer(LocalServer):
    """A WSGI app (the real web app, or a stand-in) over TLS on 127.0.0.1."""

    def __init__(self, app: Any, certificate: IssuedCertificate) -> None:
        self.app = app
        self.certificate = certificate
        self._server: Any = None
        self.port = 0

    def start(self) -> Self:
        self._server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, ssl_context=self.certificate.context()
        )
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
