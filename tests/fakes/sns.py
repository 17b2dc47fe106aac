"""SNS on 127.0.0.1: serves the signing certificate a test makes and records the
subscription confirmations it is asked for, as ``sns.<region>.amazonaws.com`` does; signs
messages as SNS signs them (SignatureVersion 1 and 2)."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from newsletter.web.webhooks_ses import string_to_sign


def make_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """Serves the signing certificate and records confirmations, as sns.<region> does."""

    def __init__(self) -> None:
        self.key, self.pem = make_certificate()
        self.confirmed: list[str] = []
        self.certificate_fetches = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.endswith(".pem"):
                    fake.certificate_fetches += 1
                    body = fake.pem
                elif self.path.startswith("/confirm"):
                    fake.confirmed.append(self.path)
                    body = b"<ConfirmSubscriptionResponse/>"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, message: dict[str, str], *, version: str = "1") -> dict[str, str]:
        message = {
            **message,
            "SignatureVersion": version,
            "SigningCertURL": self.url + f"SimpleNotificationService-{uuid.uuid4().hex}.pem",
        }
        canonical = string_to_sign(message)
        assert canonical is not None
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical.encode(), padding.PKCS1v15(), algorithm)
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
