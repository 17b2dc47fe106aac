"""``site_url`` over HTTPS: a certificate that verifies, and a one-click endpoint that
answers a ``POST /u/<token>`` as RFC 8058 wants (no redirect).

The host is resolved through the doctor's own :class:`~.dns_lookup.Dns` (so
``--nameserver`` covers it too) and the certificate is checked against the system's
CAs, plus ``ca_file`` when given (a private CA, or a test's); verification is never
turned off. The probe is an unsubscribe link for subscriber 0, which no row ever has
(ids start at 1), signed with ``NEWSLETTER_SECRET_KEY`` when it is set here: the site
then answers it as it answers a reader's one-click, 200, and changes nothing. Without
the key the probe is signed with the public development key, which the site refuses
with 404: that still shows the route takes a POST and does not redirect.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.config import Config
from newsletter.deliverability.dns_lookup import Dns
from newsletter.errors import TokenError
from newsletter.render.mail import ONE_CLICK
from newsletter.tokens import DEVELOPMENT_SECRET, Links, Signer, require_secret

PROBE_SUBSCRIBER = 0  # no subscriber has id 0: the probe unsubscribes nobody
PROBE_LINK_KEY = "doctor"
EXPIRY_WARNING_DAYS = 14
MAX_ANSWER = 64 * 1024  # what is read of the probe's answer


@dataclass(frozen=True)
class SiteResult:
    """What was found; ``level`` ok / warning / error, ``message`` says what and why."""

    check: str
    level: str
    message: str


def check_site(
    config: Config, dns: Dns, *, ca_file: Path | None = None, timeout: float = 10.0
) -> list[SiteResult]:
    parts = urlsplit(config.site_url)
    if parts.scheme != "https":
        return [
            SiteResult(
                "https",
                "error",
                f"site_url is {config.site_url}: one-click unsubscribe (RFC 8058) must be an "
                "HTTPS URL, and Gmail and Yahoo ignore the header otherwise; serve the web "
                "app over HTTPS and set site_url to its https:// address",
            )
        ]
    host = parts.hostname or ""
    port = parts.port or 443
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = dns.addresses(host)
    if not addresses:
        return [
            SiteResult(
                "https",
                "error",
                f"{host} (site_url) has no A or AAAA record: the links in every message "
                "lead nowhere; publish the web app's address for it",
            )
        ]
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    try:
        connection, certificate = _connect(context, host, addresses[0], port, timeout)
    except ssl.SSLCertVerificationError as error:
        return [
            SiteResult(
                "https",
                "error",
                f"the certificate of {host}:{port} does not verify "
                f"({error.verify_message or error.reason}): browsers and mailbox providers "
                "refuse it; install a certificate for the name from a public CA (Let's "
                "Encrypt, for one)",
            )
        ]
    except (OSError, ssl.SSLError) as error:
        return [
            SiteResult(
                "https",
                "error",
                f"cannot open HTTPS to {host}:{port} ({addresses[0]}): {error}; is "
                "'newsletter serve' (or its proxy) running there?",
            )
        ]
    results = [_certificate_result(host, certificate)]
    try:
        results.append(_probe(connection, config, parts.path))
    finally:
        connection.close()
    return results


def _connect(
    context: ssl.SSLContext, host: str, address: str, port: int, timeout: float
) -> tuple[http.client.HTTPSConnection, dict[str, object]]:
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        tls = context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    connection.sock = tls  # already connected (to the address our DNS gave) and verified
    return connection, dict(tls.getpeercert() or {})


def _certificate_result(host: str, certificate: dict[str, object]) -> SiteResult:
    not_after = str(certificate.get("notAfter", ""))
    try:
        expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC)
    except ValueError:
        return SiteResult("https", "ok", f"{host} has a valid certificate")
    days = (expires - dt.datetime.now(dt.UTC)).days
    if days < EXPIRY_WARNING_DAYS:
        return SiteResult(
            "https",
            "warning",
            f"the certificate of {host} expires in {days} day(s) ({expires:%Y-%m-%d}); "
            "renew it (is automatic renewal running?)",
        )
    return SiteResult("https", "ok", f"{host} has a valid certificate, until {expires:%Y-%m-%d}")


def _probe(connection: http.client.HTTPSConnection, config: Config, base_path: str) -> SiteResult:
    try:
        secret, signed = require_secret(), True
    except TokenError:
        secret, signed = DEVELOPMENT_SECRET, False
    url = Links(config, Signer(secret)).unsubscribe(PROBE_SUBSCRIBER, PROBE_LINK_KEY, None)
    path = urlsplit(url).path
    try:
        connection.request(
            "POST",
            path,
            body=ONE_CLICK,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        response.read(MAX_ANSWER)
    except (OSError, http.client.HTTPException) as error:
        return SiteResult(
            "one-click", "error", f"POST {path[:40]}... got no answer ({error}); is the web app up?"
        )
    status = response.status
    shown = f"POST {base_path}/u/<probe> answered {status}"
    if 300 <= status < 400:
        return SiteResult(
            "one-click",
            "error",
            f"{shown}, a redirect (to {response.getheader('Location')}): RFC 8058 forbids "
            "one; point site_url at the address that answers itself (https://, the final host)",
        )
    if status == 200:
        return SiteResult("one-click", "ok", f"{shown}: one-click unsubscribe works")
    if status == 404 and not signed:
        return SiteResult(
            "one-click",
            "ok",
            f"{shown}, as it must to a probe signed without the site's key: the endpoint "
            "takes POSTs (with NEWSLETTER_SECRET_KEY set here the probe goes all the way)",
        )
    if status == 404:
        return SiteResult(
            "one-click",
            "error",
            f"{shown} to a probe signed with NEWSLETTER_SECRET_KEY: the site runs with "
            "another key, or is not 'newsletter serve'; every unsubscribe link would fail",
        )
    if status == 405:
        return SiteResult(
            "one-click",
            "error",
            f"{shown}: the site does not take POSTs there; serve the web app "
            "('newsletter serve') at site_url",
        )
    return SiteResult(
        "one-click",
        "error" if status >= 500 else "warning",
        f"{shown}; RFC 8058 one-click needs a 200: look at the web app's log",
    )
