"""``SendBulkEmail`` as one signed POST, without botocore's per-request machinery.

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
from dataclasses import dataclass
from typing import Any

import orjson

from newsletter.errors import ProviderError
from newsletter.send.providers.http_api import post
from newsletter.send.providers.ses_errors import NO_CREDENTIALS

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
