"""``SendBulkEmail`` written (:func:`bulk_request`) and sent as one signed POST
(:class:`SignedPoster`), without botocore's per-request machinery.

Measured (docs/performance.md): botocore validating and serialising a 50-entry
``SendBulkEmail`` walks the service model's shapes for every field of every entry,
some 900 calls a request, more CPU than everything else the sender does for those 50
readers together. The request is one JSON object, so it is written here with orjson,
signed with botocore's own SigV4 (service ``ses``, the client's region, credentials
and endpoint, refreshed as botocore refreshes them) and sent through
:func:`~newsletter.send.providers.http_api.post`, which tells apart a request that
never left (:class:`~newsletter.send.providers.http_api.NotSent`) from one whose
answer was lost (:class:`~newsletter.send.providers.http_api.AnswerLost`). An error
answer is read as botocore reads SES v2's: the code from ``x-amzn-ErrorType`` (or the
body's ``__type``/``code``), the text from ``message``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from newsletter.errors import ProviderError
from newsletter.render.header_lines import format_address, header_value
from newsletter.send.providers import Batch, Content
from newsletter.send.providers.http_api import post
from newsletter.send.providers.ses_errors import NO_CREDENTIALS
from newsletter.send.providers.stored_templates import Template

with contextlib.suppress(ImportError):  # ses.py says what to install
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

BULK_PATH = "/v2/email/outbound-bulk-emails"


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

    def send_bulk_email(self, request: dict[str, Any]) -> SesAnswer:
        """One attempt; :class:`~newsletter.send.providers.http_api.NotSent` or
        :class:`~newsletter.send.providers.http_api.AnswerLost` if it failed."""
        if self._credentials is None:
            raise ProviderError(NO_CREDENTIALS)
        data = orjson.dumps(request)
        signed = AWSRequest(
            method="POST", url=self.url, data=data, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "ses", self.region).add_auth(signed)
        answer = post(self.url, data, dict(signed.headers.items()), timeout=self.timeout)
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


def bulk_request(
    batch: Batch, template: Template, going: Sequence[int], configuration_set: str | None
) -> dict[str, Any]:
    """The ``SendBulkEmail`` parameters for the batch's readers ``going``."""
    content = batch.content
    default: dict[str, Any] = {"TemplateName": template.alias}
    if content.headers:
        default["Headers"] = _headers(content.headers)
    request: dict[str, Any] = {
        "FromEmailAddress": header_value("From", content.sender),
        "DefaultContent": {"Template": default},
        "BulkEmailEntries": [_entry(content, template, batch.recipients[i]) for i in going],
    }
    if content.reply_to:
        request["ReplyToAddresses"] = [header_value("Reply-To", content.reply_to)]
    if configuration_set:
        request["ConfigurationSetName"] = configuration_set
    return request


def _entry(content: Content, template: Template, recipient: Any) -> dict[str, Any]:
    values = content.values_for(recipient.personalization)
    data = orjson.dumps(template.model(values)).decode()
    entry: dict[str, Any] = {
        "Destination": {
            "ToAddresses": [_on_the_wire("To", format_address(recipient.email, recipient.name))]
        },
        "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": data}},
    }
    if recipient.headers:
        entry["ReplacementHeaders"] = _headers(recipient.headers)
    if recipient.tags:
        entry["ReplacementTags"] = [{"Name": k, "Value": v} for k, v in recipient.tags.items()]
    return entry


def _headers(headers: Any) -> list[dict[str, str]]:
    return [{"Name": name, "Value": _on_the_wire(name, value)} for name, value in headers.items()]


def _on_the_wire(name: str, value: str) -> str:
    """``header_value(name, value)``, which a value of printable ASCII without an encoded
    word nor edge spaces (a reader's List-Unsubscribe, most addresses) already is: the
    call is skipped for those (two a reader; its cache holds the values that repeat)."""
    if value.isascii() and value.isprintable() and "=?" not in value and value == value.strip():
        return value
    return header_value(name, value)
