"""A stand-in for Postmark's batch endpoint, ``POST /email/batch``, on 127.0.0.1.

It refuses what Postmark documents refusing: a missing or wrong
``X-Postmark-Server-Token`` (401, ErrorCode 10), a body that is not a JSON array
(422, ErrorCode 409/300), more than 500 messages (422, ErrorCode 410), more than
50 MB (413); and per message, in the 200 answer's results (in order): a From that is
not a confirmed Sender Signature (400), no To or more than 50 recipients, no
TextBody or HtmlBody, Metadata over its limits (300), an unknown MessageStream (1235),
an inactive recipient (406)::

    with FakePostmark() as postmark:
        postmark.inactive.add("gone@example.org")
        ... PostmarkProvider with postmark.api_url = postmark.url ...
        postmark.messages()     # every accepted message, as an EmailMessage

``python -m tests.fakes.postmark`` serves on its own for the benchmark.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import secrets
from email.message import EmailMessage
from typing import Any

import orjson

from tests.fakes.http_api import FakeApi, Request, serve_until_stdin_closes

SERVER_TOKEN = "postmark-fake-server-token"
SENDER = "letters@breastfeedingworld.example"  # the example project's From, confirmed
MAX_MESSAGES = 500
MAX_BODY_BYTES = 50 * 1024 * 1024
MAX_RECIPIENTS = 50
MAX_METADATA_FIELDS = 10
MAX_METADATA_NAME = 20
MAX_METADATA_VALUE = 80


def error(code: int, message: str) -> bytes:
    return json.dumps({"ErrorCode": code, "Message": message}).encode()


class FakePostmark(FakeApi):
    def __init__(
        self,
        *,
        token: str = SERVER_TOKEN,
        senders: tuple[str, ...] = (SENDER,),
        streams: tuple[str, ...] = ("outbound", "broadcast"),
        keep_requests: bool = True,
    ) -> None:
        super().__init__(keep_requests=keep_requests)
        self.token = token
        self.senders = set(senders)
        self.streams = set(streams)
        self.inactive: set[str] = set()
        self.accepted: list[dict[str, Any]] = []  # every accepted message, with its MessageID

    def fault_body(self, status: int) -> bytes:
        return error(0, "Rate limit exceeded" if status == 429 else "Internal server error")

    def check(self, request: Request) -> tuple[int, bytes] | None:
        if request.path != "/email/batch":
            return 404, error(0, "not found")
        if request.headers.get("x-postmark-server-token") != self.token:
            return 401, error(
                10,
                "No Account or Server API tokens were supplied in the HTTP headers. Please "
                "add a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.",
            )
        if len(request.body) > MAX_BODY_BYTES:
            return 413, error(0, "Payload Too Large")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return 422, error(409, "JSON data required: set Content-Type: application/json")
        try:
            body = orjson.loads(request.body)
        except ValueError:
            return 422, error(402, "Received invalid JSON input.")
        if not isinstance(body, list) or not all(isinstance(m, dict) for m in body):
            return 422, error(300, "Invalid email request: the batch must be a JSON array")
        if len(body) > MAX_MESSAGES:
            return 422, error(410, "Too many batch messages: at most 500 in one request.")
        request.parsed = body
        return None

    def accept(self, request: Request) -> tuple[bytes, list[str]]:
        results = []
        addresses = []
        for message in request.parsed:
            code, text = self.problem(message)
            if code:
                results.append({"ErrorCode": code, "Message": text})
                continue
            message_id = secrets.token_hex(16)
            to = email.utils.getaddresses([message["To"]])[0][1]
            addresses.append(to)
            if self.keep_requests:
                with self.lock:
                    self.accepted.append({**message, "MessageID": message_id})
            results.append(
                {"ErrorCode": 0, "Message": "OK", "MessageID": message_id, "To": message["To"]}
            )
        return json.dumps(results).encode(), addresses

    def problem(self, message: dict[str, Any]) -> tuple[int, str]:
        sender = email.utils.parseaddr(str(message.get("From") or ""))[1]
        if not sender:
            return 300, "Invalid 'From' address: ''."
        if sender not in self.senders:
            return 400, (
                f"The 'From' address you supplied ({sender}) is not a Sender Signature on "
                "your account. Please add and confirm this address in order to be able to "
                "use it in the 'From' field of your messages."
            )
        to = [a for _, a in email.utils.getaddresses([str(message.get("To") or "")]) if a]
        if not to or not all("@" in address for address in to):
            return 300, f"Invalid 'To' address: '{message.get('To')}'."
        if len(to) > MAX_RECIPIENTS:
            return 300, "Maximum of 50 recipients allowed per email message"
        if not message.get("TextBody") and not message.get("HtmlBody"):
            return 300, "Provide either email TextBody or HtmlBody or both."
        stream = message.get("MessageStream") or "outbound"
        if stream not in self.streams:
            return 1235, f"The message stream for the provided 'ID' ({stream}) was not found."
        metadata = message.get("Metadata") or {}
        if len(metadata) > MAX_METADATA_FIELDS or any(
            len(k) > MAX_METADATA_NAME or not isinstance(v, str) or len(v) > MAX_METADATA_VALUE
            for k, v in metadata.items()
        ):
            return 300, "Metadata: at most 10 fields, names of 20 and values of 80 characters."
        headers = message.get("Headers") or []
        if not all(isinstance(h, dict) and {"Name", "Value"} <= h.keys() for h in headers):
            return 300, "Headers must be a list of {Name, Value}."
        if any(address in self.inactive for address in to):
            return 406, (
                "You tried to send to recipient(s) that have been marked as inactive. Found "
                "inactive addresses: " + ", ".join(a for a in to if a in self.inactive)
            )
        return 0, ""

    def messages(self) -> list[EmailMessage]:
        """Every accepted message as the recipient would read it."""
        with self.lock:
            accepted = list(self.accepted)
        return [_as_email(message) for message in accepted]


def _as_email(message: dict[str, Any]) -> EmailMessage:
    built = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    built["From"] = message["From"]
    built["To"] = message["To"]
    built["Subject"] = message["Subject"]
    for header in message.get("Headers") or []:
        built[header["Name"]] = header["Value"]
    built.set_content(message["TextBody"], cte="quoted-printable")
    built.add_alternative(message["HtmlBody"], subtype="html", cte="quoted-printable")
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


if __name__ == "__main__":
    serve_until_stdin_closes(FakePostmark(keep_requests=False))
