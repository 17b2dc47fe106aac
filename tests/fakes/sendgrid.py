"""A stand-in for SendGrid's v3 Mail Send API: real HTTP on 127.0.0.1, random port.

It refuses what the real API refuses (SendGrid's documented limits: more than 1,000
personalizations or recipients, custom_args over 10,000 bytes, substitutions over
10,000 bytes, a missing subject, content or from, reserved headers, too many
categories, send_at too far ahead, bad auth, bodies over 30 MB) with SendGrid's error
shape, and can be told to answer the next requests with a status (429 with reset
headers, 500...), slowly, or not at all (dropped connection)::

    with FakeSendGrid() as sendgrid:
        sendgrid.fail_next(429, headers={"X-RateLimit-Reset": ...})
        ... SendGridAPIClient(key, host=sendgrid.url) ...
        sendgrid.messages()            # one SentMessage per recipient, substituted
        sendgrid.received_by()         # Counter of recipient addresses

Also runs on its own (for the benchmark: another process, so it does not share the
sender's GIL): ``python -m tests.fakes.sendgrid`` prints its URL; GET /_fake/stats
answers the counts as JSON.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import LocalServer

API_KEY = "SG.fake-key-for-tests"
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SUBSTITUTIONS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_SEND_AT_AHEAD = 72 * 3600
HOLD_LIMIT = 60.0  # seconds a held request waits for its release before it is answered
# Headers the API does not let a sender set (the OpenAPI description of "headers").
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "x-sg-id", "x-sg-eid", "received", "dkim-signature", "Content-Type",
        "Content-Transfer-Encoding", "To", "From", "Subject", "Reply-To", "CC", "BCC",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of accepting it at once."""

    status: int | None = None  # answer with this status (and SendGrid's error body)
    errors: tuple[tuple[str | None, str], ...] = ()  # (field, message) for that body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # wait this long before answering
    drop: bool = False  # close the connection without an answer
    deliver: bool = True  # with delay/drop: whether the messages go out all the same
    hold: threading.Event | None = None  # answer only once the test sets it


@dataclass(frozen=True)
class SentMessage:
    """One personalization of an accepted request, as SendGrid would deliver it."""

    message_id: str
    sender: dict[str, str]
    to: tuple[dict[str, str], ...]
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    custom_args: dict[str, str]
    request: dict[str, Any]  # the whole request body, for settings like tracking and asm

    def as_bytes(self) -> bytes:
        message = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
        message["From"] = _mailbox(self.sender)
        message["To"] = ", ".join(_mailbox(to) for to in self.to)
        message["Subject"] = self.subject
        message["X-Message-Id"] = self.message_id
        for name, value in self.headers.items():
            message[name] = value
        message.set_content(self.text, cte="quoted-printable")
        message.add_alternative(self.html, subtype="html", cte="quoted-printable")
        return message.as_bytes()

    def message(self) -> EmailMessage:
        """The delivered message, read back with the stdlib parser."""
        parsed = email.message_from_bytes(self.as_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _mailbox(address: dict[str, str]) -> str:
    """How SendGrid writes a name and address into the header: the name in quotes (it
    takes a name that is quoted already as it is), encoded where it is not ASCII."""
    name = address.get("name")
    if name and len(name) >= 2 and name[0] == name[-1] == '"':
        return f"{name} <{address['email']}>"
    return email.utils.formataddr((name or "", address["email"]))


def _mangled(address: dict[str, str]) -> bool:
    """SendGrid's documented limitation: it splits a recipient's name at a comma or a
    semicolon, takes a piece of the name for the address, and drops the message (202
    all the same). A name in double quotes goes through whole."""
    name = address.get("name") or ""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return False
    return "," in name or ";" in name


def problems(body: Any) -> list[tuple[str | None, str]]:
    """(field, message) for everything SendGrid would refuse in a Mail Send body."""
    if not isinstance(body, dict):
        return [(None, "Bad Request: the request body must be a JSON object")]
    found: list[tuple[str | None, str]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        found.append(
            (
                "personalizations",
                "The personalizations field is required and must have at least one "
                "personalization.",
            )
        )
        personalizations = []
    elif len(personalizations) > MAX_PERSONALIZATIONS:
        found.append(
            (
                "personalizations",
                "You may not have more than 1000 personalizations per API request.",
            )
        )
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        found.append(
            (
                "from.email",
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.",
            )
        )
    has_template = bool(body.get("template_id"))
    message_args = _mapping_size(body.get("custom_args")) or 0
    recipients = 0
    for index, personalization in enumerate(personalizations):
        if not isinstance(personalization, dict):
            found.append((f"personalizations.{index}", "Each personalization must be an object."))
            continue
        found.extend(_personalization_problems(personalization, index, message_args))
        for kind in ("to", "cc", "bcc"):
            recipients += len(personalization.get(kind) or ())
    if recipients > MAX_RECIPIENTS:
        found.append(
            (
                "personalizations",
                "The total number of recipients must be no more than 1000. This includes "
                "all recipients defined within the to, cc, and bcc parameters, across each "
                "object that you include in the personalizations array.",
            )
        )
    found.extend(_content_problems(body.get("content"), has_template))
    found.extend(_problems_of_headers(body.get("headers"), "headers"))
    categories = body.get("categories") or []
    if len(categories) > MAX_CATEGORIES:
        found.append(("categories", "You cannot have more than 10 categories per request."))
    if any(len(category) > MAX_CATEGORY_LENGTH for category in categories):
        found.append(("categories", "A category cannot have more than 255 characters."))
    asm = body.get("asm")
    if asm is not None and not isinstance(asm.get("group_id"), int):
        found.append(("asm.group_id", "The asm group_id must be an integer."))
    found.extend(_send_at_problems(body.get("send_at"), "send_at"))
    every_has_subject = all(isinstance(p, dict) and p.get("subject") for p in personalizations)
    if not has_template and not body.get("subject") and not every_has_subject:
        found.append(
            (
                "subject",
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
            )
        )
    return found


def _is_address(item: Any) -> bool:
    return isinstance(item, dict) and "@" in str(item.get("email", ""))


def _personalization_problems(
    personalization: dict[str, Any], index: int, message_args: int
) -> list[tuple[str, str]]:
    # Written for speed as well as fidelity: the benchmark pushes 100,000 through here.
    where = f"personalizations.{index}"
    found = []
    to = personalization.get("to")
    if not isinstance(to, list) or not to or not all(_is_address(item) for item in to):
        found.append(
            (
                f"{where}.to",
                "The to array is required for all personalization objects, and must have "
                "at least one email object with a valid email address.",
            )
        )
    substitutions = _mapping_size(personalization.get("substitutions"))
    if substitutions is None:
        found.append((f"{where}.substitutions", "substitutions must map strings to strings."))
    elif substitutions > MAX_SUBSTITUTIONS_BYTES:
        found.append(
            (
                f"{where}.substitutions",
                "The total size of substitutions must be less than 10,000 bytes per "
                "personalization.",
            )
        )
    custom_args = _mapping_size(personalization.get("custom_args"))
    if custom_args is None:
        found.append((f"{where}.custom_args", "custom_args must map strings to strings."))
    elif custom_args + message_args > MAX_CUSTOM_ARGS_BYTES:
        found.append((f"{where}.custom_args", "Custom arguments must be under 10,000 bytes."))
    found.extend(_problems_of_headers(personalization.get("headers"), f"{where}.headers"))
    found.extend(_send_at_problems(personalization.get("send_at"), f"{where}.send_at"))
    return found


def _mapping_size(value: Any) -> int | None:
    """About the bytes of a string-to-string mapping (keys and values); None if it is not one."""
    if not value:
        return 0
    if not isinstance(value, dict):
        return None
    size = 0
    for key, item in value.items():
        if not isinstance(item, str):
            return None
        size += len(key) + len(item) if item.isascii() else len(key) + len(item.encode())
    return size


def _problems_of_headers(headers: Any, path: str) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if _mapping_size(headers) is None:
        return [(path, "headers must map strings to strings.")]
    reserved = sorted(name for name in headers if name.lower() in RESERVED_HEADERS)
    if reserved:
        return [(path, f"The header {reserved[0]!r} is reserved and cannot be set.")]
    if any("\n" in value or "\r" in value for value in headers.values()):
        return [(path, "Header values may not contain line breaks.")]
    # "You must ensure these are properly encoded if they contain unicode characters."
    if not all(value.isascii() for value in headers.values()):
        return [(path, "Header values must be ASCII: encode them (RFC 2047) first.")]
    return []


def _content_problems(content: Any, has_template: bool) -> list[tuple[str, str]]:
    if has_template and not content:
        return []
    if not isinstance(content, list) or not content:
        return [
            (
                "content",
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block.",
            )
        ]
    found = []
    types = [block.get("type") for block in content if isinstance(block, dict)]
    if any(not isinstance(b, dict) or not b.get("value") for b in content):
        found.append(("content", "The content value must be a string at least one character."))
    if "text/plain" in types and types.index("text/plain") != 0:
        found.append(("content", "If present, text/plain must be first, followed by text/html."))
    if len(types) != len(set(types)):
        found.append(("content", "Each content type may only be provided once."))
    return found


def _send_at_problems(send_at: Any, path: str) -> list[tuple[str, str]]:
    if send_at is not None and send_at > time.time() + MAX_SEND_AT_AHEAD:
        return [(path, "send_at cannot be scheduled more than 72 hours in advance.")]
    return []


def error_body(found: list[tuple[str | None, str]]) -> bytes:
    return json.dumps(
        {"errors": [{"message": message, "field": path, "help": None} for path, message in found]}
    ).encode()


class FakeSendGrid(LocalServer):
    def __init__(self, *, api_key: str = API_KEY, keep_requests: bool = True) -> None:
        self.api_key = api_key
        self.keep_requests = keep_requests  # False: only count (the benchmark's millions)
        self.lock = threading.Condition()
        self.faults: list[Fault] = []
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (message id, body)
        self.received: Counter[str] = Counter()  # recipient address -> messages
        self.dropped: Counter[str] = Counter()  # accepted, never delivered (see _mangled)
        self.requests = 0  # every POST that arrived, answered or not
        self.answers: list[int] = []  # the status of every answered request
        self.request_sizes: list[int] = []
        self.personalization_counts: list[int] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Scripting the next answers.

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        errors: list[tuple[str | None, str]] | None = None,
    ) -> None:
        fault = Fault(status=status, headers=headers or {}, errors=tuple(errors or ()))
        self.faults.extend([fault] * times)

    def rate_limit_next(self, *, reset_in: float, times: int = 1) -> None:
        reset = str(int(time.time() + reset_in + 0.999))
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": reset}  # fmt: skip
        self.fail_next(429, times=times, headers=headers)

    def slow_next(self, seconds: float, *, deliver: bool = True, times: int = 1) -> None:
        """Answer the next requests only after ``seconds`` (delivering them first, or not)."""
        self.faults.extend([Fault(delay=seconds, deliver=deliver)] * times)

    def hold_next(self) -> threading.Event:
        """Deliver the next request but answer it only once the returned event is set, so
        a test can act while that request is with the provider (held at most a minute)."""
        release = threading.Event()
        self.faults.append(Fault(hold=release))
        return release

    def drop_next(self, *, deliver: bool = False, times: int = 1) -> None:
        """Hang up on the next requests without answering (delivering them first, or not)."""
        self.faults.extend([Fault(drop=True, deliver=deliver)] * times)

    def normal_next(self, *, times: int = 1) -> None:
        """Accept the next requests normally (to place a fault further down the line)."""
        self.faults.extend([Fault()] * times)

    # What arrived.

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: self.requests >= count, timeout):
                raise TimeoutError(f"{self.requests} request(s) arrived, expected {count}")

    def received_by(self) -> Counter[str]:
        with self.lock:
            return Counter(self.received)

    def messages(self) -> list[SentMessage]:
        with self.lock:
            accepted = list(self.accepted)
        return [message for message_id, body in accepted for message in _deliver(message_id, body)]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "answers": Counter(str(status) for status in self.answers),
                "recipients": sum(self.received.values()),
                "distinct_recipients": len(self.received),
                "duplicates": sum(count - 1 for count in self.received.values() if count > 1),
                "max_personalizations": max(self.personalization_counts, default=0),
                "max_request_bytes": max(self.request_sizes, default=0),
            }

    # Running.

    def start(self) -> FakeSendGrid:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _accept(self, body: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)
        with self.lock:
            for personalization in body["personalizations"]:
                for to in personalization["to"]:
                    if _mangled(to):
                        self.dropped[to["email"]] += 1
                    else:
                        self.received[to["email"]] += 1
            if self.keep_requests:
                self.accepted.append((message_id, body))
        return message_id


def _deliver(message_id: str, body: dict[str, Any]) -> list[SentMessage]:
    parts = {block["type"]: block["value"] for block in body["content"]}
    delivered = []
    for personalization in body["personalizations"]:
        if any(_mangled(to) for to in personalization["to"]):
            continue
        substitutions = personalization.get("substitutions", {})

        def substitute(text: str, substitutions: dict[str, str] = substitutions) -> str:
            for tag, value in substitutions.items():
                text = text.replace(tag, value)
            return text

        delivered.append(
            SentMessage(
                message_id=message_id,
                sender=body["from"],
                to=tuple(personalization["to"]),
                subject=substitute(personalization.get("subject") or body["subject"]),
                text=substitute(parts.get("text/plain", "")),
                html=substitute(parts.get("text/html", "")),
                headers={**body.get("headers", {}), **personalization.get("headers", {})},
                custom_args={**personalization.get("custom_args", {})},
                request=body,
            )
        )
    return delivered


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read the fake's records instead

        def do_GET(self) -> None:
            if self.path == "/_fake/stats":
                self._answer(200, json.dumps(fake.stats()).encode())
            else:
                self._answer(404, error_body([(None, "not found")]))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with fake.lock:
                fake.requests += 1
                fault = fake.faults.pop(0) if fake.faults else Fault()
                fake.lock.notify_all()
            if self.path != "/v3/mail/send":
                return self._answer(404, error_body([(None, "not found")]))
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                message = "The provided authorization grant is invalid, expired, or revoked"
                return self._answer(401, error_body([(None, message)]))
            if length > MAX_BODY_BYTES:
                return self._answer(413, error_body([(None, "content too large")]))
            try:
                body = json.loads(raw)
            except ValueError:
                return self._answer(400, error_body([(None, "Bad Request")]))
            found = problems(body)
            if found:
                return self._answer(400, error_body(found))
            if fault.status is not None:
                text = "too many requests" if fault.status == 429 else "internal error"
                errors = list(fault.errors) or [(None, text)]
                return self._answer(fault.status, error_body(errors), fault.headers)
            message_id = fake._accept(body) if fault.deliver else None
            with fake.lock:
                fake.request_sizes.append(length)
                fake.personalization_counts.append(len(body["personalizations"]))
            if fault.delay:
                time.sleep(fault.delay)
            if fault.hold is not None:
                fault.hold.wait(HOLD_LIMIT)
            if fault.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            if message_id is None:  # held, then not delivered after all
                return self._answer(500, error_body([(None, "internal error")]))
            return self._answer(202, b"", {"X-Message-Id": message_id})

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            with fake.lock:
                fake.answers.append(status)
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client went away (timed out, or was killed): nothing to tell it

    return Handler


def main() -> None:
    """Serve until stdin closes; print the URL first (for the benchmark)."""
    with FakeSendGrid(keep_requests=False) as fake:
        print(fake.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
