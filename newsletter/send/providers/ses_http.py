"""``SendBulkEmail`` written (:func:`bulk_request`) and sent as one signed POST
(:class:`SignedPoster`), without botocore's per-request machinery.

Measured (docs/performance.md): botocore validating and serialising a 50-entry
``SendBulkEmail`` walks the service model's shapes for every field of every entry,
some 900 calls a request, more CPU than everything else the sender does for those 50
readers together. The request is one JSON object, so it is written here with orjson,
signed with SigV4 by :class:`RequestSigner` (service ``ses``, the client's region,
credentials and endpoint, refreshed as botocore refreshes them) and sent through
:func:`~newsletter.send.providers.http_api.post`, which tells apart a request that
never left (:class:`~newsletter.send.providers.http_api.NotSent`) from one whose
answer was lost (:class:`~newsletter.send.providers.http_api.AnswerLost`). An error
answer is read as botocore reads SES v2's: the code from ``x-amzn-ErrorType`` (or the
body's ``__type``/``code``), the text from ``message``.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from newsletter.errors import ProviderError
from newsletter.render.header_lines import format_address, header_value
from newsletter.send.providers import Batch, Content
from newsletter.send.providers.http_api import post
from newsletter.send.providers.ses_errors import NO_CREDENTIALS
from newsletter.send.providers.stored_templates import Template

BULK_PATH = "/v2/email/outbound-bulk-emails"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class SesAnswer:
    status: int
    body: Any  # the JSON answer (a dict), None if it was not JSON
    code: str  # the error code, "" on success
    message: str


class SignedPoster:
    """POSTs ``SendBulkEmail`` requests to ``endpoint`` (a boto3 ``sesv2`` client's),
    signed with ``credentials`` (its session's; None: there are none)."""

    def __init__(self, endpoint: str, credentials: Any, *, region: str, timeout: float) -> None:
        self.url = endpoint.rstrip("/") + BULK_PATH
        self.region = region
        self.timeout = timeout
        self._credentials = credentials
        self._signer = RequestSigner(self.url, region=region, service="ses")

    def send_bulk_email(self, data: bytes) -> SesAnswer:
        """One attempt at POSTing ``data`` (:func:`bulk_request`'s);
        :class:`~newsletter.send.providers.http_api.NotSent` or
        :class:`~newsletter.send.providers.http_api.AnswerLost` if it failed."""
        if self._credentials is None:
            raise ProviderError(NO_CREDENTIALS)
        # Read per request: botocore's refreshable credentials renew themselves here.
        headers = self._signer.headers(data, self._credentials.get_frozen_credentials())
        answer = post(self.url, data, headers, timeout=self.timeout)
        try:
            body = orjson.loads(answer.body) if answer.body else {}
        except orjson.JSONDecodeError:
            body = None
        if answer.status < 300:
            return SesAnswer(answer.status, body, "", "")
        fields = body if isinstance(body, dict) else {}
        code = (
            answer.headers.get("x-amzn-errortype", "").split(":")[0]
            or str(fields.get("__type") or fields.get("code") or answer.status).rpartition("#")[2]
        )
        message = str(fields.get("message") or fields.get("Message") or answer.text(300))
        return SesAnswer(answer.status, body, code, message[:400])


class RequestSigner:
    """SigV4 headers for a JSON POST to ``url``, as botocore's ``SigV4Auth`` writes them
    (tests/send/test_ses_http.py compares the two).

    Measured (docs/performance.md): ``SigV4Auth`` re-derives the signing key and walks
    its generic header and query machinery on every request, some 8% of a bulk send's
    CPU. Here the signed headers are always content-type, host, x-amz-date (and
    x-amz-security-token with temporary credentials), and the derived key, which changes
    only with the day or the secret, is kept."""

    def __init__(self, url: str, *, region: str, service: str) -> None:
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        host = parts.hostname or ""
        self._host = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
        self._path = parts.path or "/"
        self._region = region
        self._service = service
        self._key_for: tuple[str, str] = ("", "")
        self._key = b""

    def headers(
        self, body: bytes, credentials: Any, now: datetime.datetime | None = None
    ) -> dict[str, str]:
        """The headers to send ``body`` with, signed with ``credentials`` (botocore's
        frozen ones: access_key, secret_key, token) at ``now`` (UTC; default: now)."""
        moment = now or datetime.datetime.now(datetime.UTC)
        timestamp = moment.strftime("%Y%m%dT%H%M%SZ")
        day = timestamp[:8]
        headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Date": timestamp}
        canonical = f"content-type:{CONTENT_TYPE}\nhost:{self._host}\nx-amz-date:{timestamp}\n"
        names = "content-type;host;x-amz-date"
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
            canonical += f"x-amz-security-token:{' '.join(credentials.token.split())}\n"
            names += ";x-amz-security-token"
        request = "\n".join(
            ("POST", self._path, "", canonical, names, hashlib.sha256(body).hexdigest())
        )
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                timestamp,
                scope,
                hashlib.sha256(request.encode()).hexdigest(),
            )
        )
        signature = hmac.new(
            self._signing_key(credentials.secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        return headers

    def _signing_key(self, secret: str, day: str) -> bytes:
        if self._key_for != (secret, day):
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key_for, self._key = (secret, day), key
        return self._key


def bulk_request(
    batch: Batch, template: Template, going: Sequence[int], configuration_set: str | None
) -> bytes:
    """The ``SendBulkEmail`` request (JSON) for the batch's readers ``going``.

    Measured (docs/performance.md): building a dict per reader and serialising them was
    some 17% of a bulk send's CPU. The parts that are the same for every reader (the
    batch's fields, each entry's keys, header and tag names) are serialised once; only
    each reader's values are, and spliced in."""
    content = batch.content
    default: dict[str, Any] = {"TemplateName": template.alias}
    if content.headers:
        default["Headers"] = [
            {"Name": name, "Value": _on_the_wire(name, value)}
            for name, value in content.headers.items()
        ]
    head: dict[str, Any] = {
        "FromEmailAddress": header_value("From", content.sender),
        "DefaultContent": {"Template": default},
    }
    if content.reply_to:
        head["ReplyToAddresses"] = [header_value("Reply-To", content.reply_to)]
    if configuration_set:
        head["ConfigurationSetName"] = configuration_set
    entries = b",".join([_entry(content, template, batch.recipients[i]) for i in going])
    return orjson.dumps(head)[:-1] + b',"BulkEmailEntries":[' + entries + b"]}"


_TO = b'{"Destination":{"ToAddresses":['
_DATA = b']},"ReplacementEmailContent":{"ReplacementTemplate":{"ReplacementTemplateData":'


def _entry(content: Content, template: Template, recipient: Any) -> bytes:
    values = content.values_for(recipient.personalization)
    data = orjson.dumps(template.model(values)).decode()
    address = _on_the_wire("To", format_address(recipient.email, recipient.name))
    entry = _TO + orjson.dumps(address) + _DATA + orjson.dumps(data) + b"}}"
    if recipient.headers:
        entry += b',"ReplacementHeaders":[' + b",".join(
            [
                _name_then_value(name) + orjson.dumps(_on_the_wire(name, value)) + b"}"
                for name, value in recipient.headers.items()
            ]
        )
        entry += b"]"
    if recipient.tags:
        entry += b',"ReplacementTags":[' + b",".join(
            [
                _name_then_value(name) + orjson.dumps(value) + b"}"
                for name, value in recipient.tags.items()
            ]
        )
        entry += b"]"
    return entry + b"}"


@functools.lru_cache(maxsize=256)
def _name_then_value(name: str) -> bytes:
    """``{"Name":name,"Value":`` of a header or a tag: the same few names every reader."""
    return b'{"Name":' + orjson.dumps(name) + b',"Value":'


def _on_the_wire(name: str, value: str) -> str:
    """``header_value(name, value)``, which a value of printable ASCII without an encoded
    word nor edge spaces (a reader's List-Unsubscribe, most addresses) already is: the
    call is skipped for those (two a reader; its cache holds the values that repeat)."""
    if value.isascii() and value.isprintable() and "=?" not in value and value == value.strip():
        return value
    return header_value(name, value)
