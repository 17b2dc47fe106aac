"""A stand-in for Mailgun's messages API, ``POST /v3/<domain>/messages``, on 127.0.0.1.

It refuses what Mailgun refuses: a missing or wrong basic auth ``api:<key>`` (401,
"Forbidden"), a domain it does not know (404), an unverified domain (403), a sandbox
domain sending to an address that is not an authorised recipient (403), no ``from``, no
``to``, more than 1,000 recipients, neither ``text`` nor ``html``, ``recipient-variables``
that are not a JSON object (400), a body over 25 MB (413). It reads
``multipart/form-data`` (what the provider sends) and form-urlencoded bodies; a
multipart body without its boundary, or a part without a ``form-data`` name, is a 400.
An accepted request becomes one message per recipient with ``%recipient.KEY%`` filled
from their variables, in the body, the headers (``h:``) and the user variables
(``v:``), as Mailgun does::

    with FakeMailgun() as mailgun:
        ... MailgunProvider with mailgun.api_url = mailgun.url ...
        mailgun.messages()       # one EmailMessage per recipient
        mailgun.variables        # each recipient's user variables, by address

``python -m tests.fakes.mailgun`` serves on its own for the benchmark.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
import secrets
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tests.fakes.http_api import FakeApi, Request, serve_until_stdin_closes
from tests.fakes.postmark import addresses_in

API_KEY = "key-fake-mailgun-for-tests"
DOMAIN = "mg.breastfeedingworld.example"
MAX_RECIPIENTS = 1000
MAX_BODY_BYTES = 25 * 1024 * 1024
VARIABLE = re.compile(r"%recipient\.([A-Za-z0-9_]+)%")
BOUNDARY = re.compile(r';\s*boundary="?([^";]+)"?')
PART_NAME = re.compile(rb'^Content-Disposition:\s*form-data;\s*name="([^"]*)"', re.I | re.M)


def error(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


class FakeMailgun(FakeApi):
    def __init__(
        self,
        *,
        key: str = API_KEY,
        domains: tuple[str, ...] = (DOMAIN,),
        keep_requests: bool = True,
    ) -> None:
        super().__init__(keep_requests=keep_requests)
        self.key = key
        self.domains = set(domains)
        self.unverified: set[str] = set()
        self.authorized: set[str] = set()  # a sandbox domain's authorised recipients
        self.delivered: list[EmailMessage] = []
        self.variables: dict[str, dict[str, str]] = {}  # address -> user variables (v:)
        self.message_ids: list[str] = []

    def fault_body(self, status: int) -> bytes:
        return error("Too many requests" if status == 429 else "Internal Server Error")

    def check(self, request: Request) -> tuple[int, bytes] | None:
        found = re.fullmatch(r"/v3/([^/]+)/messages", request.path)
        if found is None:
            return 404, error("Not Found")
        expected = "Basic " + _b64(f"api:{self.key}")
        if request.headers.get("authorization") != expected:
            return 401, b"Forbidden"
        domain = found[1]
        if domain not in self.domains:
            return 404, error(f"Domain not found: {domain}")
        if len(request.body) > MAX_BODY_BYTES:
            return 413, error("request entity too large")
        fields = _fields(request.headers.get("content-type", ""), request.body)
        if fields is None:
            return 400, error("the body is not form data (multipart or urlencoded) as sent")
        form: dict[str, list[str]] = {}
        for name, value in fields:
            form.setdefault(name, []).append(value)
        if not form.get("from"):
            return 400, error("'from' parameter is missing")
        to = form.get("to") or []
        if not to:
            return 400, error("'to' parameter is missing")
        if len(to) > MAX_RECIPIENTS:
            return 400, error("Too many recipients: at most 1000 per message")
        addresses = [_address(item) for item in to]
        if not all("@" in address for address in addresses):
            return 400, error("'to' parameter is not a valid address. please check documentation")
        if not (form.get("text") or form.get("html")):
            return 400, error(
                "Need at least one of 'text', 'html' or 'template' parameters specified"
            )
        try:
            variables = orjson.loads(form.get("recipient-variables", ["{}"])[0])
        except ValueError:
            variables = None
        if not isinstance(variables, dict):
            return 400, error("recipient-variables parameter is not a valid JSON")
        request.parsed = (form, variables, addresses)
        if domain in self.unverified:
            return 403, error(
                f"Domain {domain} is not allowed to send: Please activate your Mailgun "
                "account. Check your inbox or log in to your control panel to resend the "
                "activation email."
            )
        if domain.startswith("sandbox") and not set(addresses) <= self.authorized:
            return 403, error(
                f"Domain {domain} is not allowed to send: Free accounts are for test purposes "
                "only. Please upgrade or add the address to authorized recipients in Account "
                "Settings."
            )
        return None

    def accept(self, request: Request) -> tuple[bytes, list[str]]:
        form, variables, addresses = request.parsed
        message_id = f"{secrets.token_hex(8)}@{DOMAIN}"
        for to, address in zip(form["to"], addresses, strict=True):
            if self.keep_requests:
                own = variables.get(address, {})
                message = _deliver(form, to, own)
                user = {name[2:]: _fill(v[0], own) for name, v in form.items() if name[:2] == "v:"}
                with self.lock:
                    self.delivered.append(message)
                    self.variables[address] = user
                    self.message_ids.append(message_id)
        answer = {"id": f"<{message_id}>", "message": "Queued. Thank you."}
        return json.dumps(answer).encode(), addresses

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.delivered)


def _fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    """The form's fields in order; None if the body is not the form it says it is."""
    try:
        return _decoded_fields(content_type, body)
    except UnicodeDecodeError:
        return None


def _decoded_fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qsl(body.decode(), keep_blank_values=True)
    found = BOUNDARY.search(content_type)
    if not content_type.startswith("multipart/form-data") or found is None:
        return None
    delimiter = b"--" + found[1].encode()
    pieces = body.split(delimiter)
    if len(pieces) < 3 or pieces[0] or not pieces[-1].startswith(b"--"):
        return None
    fields = []
    for piece in pieces[1:-1]:
        head, blank, value = piece.partition(b"\r\n\r\n")
        name = PART_NAME.search(head)
        if (
            not blank
            or name is None
            or not piece.startswith(b"\r\n")
            or not value.endswith(b"\r\n")
        ):
            return None
        fields.append((name[1].decode(), value[:-2].decode()))
    return fields


def _address(to: str) -> str:
    """The address of one ``to`` value, as ``email.utils.parseaddr`` reads it ("" if
    it holds none, or several)."""
    found = addresses_in(to)
    return found[0] if len(found) == 1 else ""


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _fill(text: str, variables: dict[str, Any]) -> str:
    return VARIABLE.sub(lambda found: str(variables.get(found[1], "")), text)


def _deliver(form: dict[str, list[str]], to: str, own: dict[str, Any]) -> EmailMessage:
    built = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    built["From"] = form["from"][0]
    built["To"] = to
    built["Subject"] = _fill(form.get("subject", [""])[0], own)
    for name, values in form.items():
        if name.startswith("h:"):
            built[name[2:]] = _fill(values[0], own)
    built.set_content(_fill(form.get("text", [""])[0], own), cte="quoted-printable")
    built.add_alternative(
        _fill(form.get("html", [""])[0], own), subtype="html", cte="quoted-printable"
    )
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


if __name__ == "__main__":
    serve_until_stdin_closes(FakeMailgun(keep_requests=False))
