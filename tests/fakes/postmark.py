"""A stand-in for Postmark's batch endpoints and templates, on 127.0.0.1.

``POST /email/batch`` (a JSON array of whole messages), ``POST /email/batchWithTemplates``
(``{"Messages": [...]}``, each message a ``TemplateAlias`` or ``TemplateId`` and a
``TemplateModel`` object, rendered here as Mustachio renders variables: ``{{{ x }}}`` as
it is, ``{{ x }}`` HTML-escaped, a dotted name looked up in nested objects, a missing one
empty; an unknown template is ErrorCode 1101), ``POST /templates`` (Name, Subject, an
HtmlBody or TextBody, an Alias of letters, digits, ``.``, ``-``, ``_`` starting with a
letter and not in use, at most 100 templates a server; tags other than variables are
refused, as the stand-in does not render them) and ``DELETE /templates/{idOrAlias}``.
Template management neither counts as a request nor takes a scripted fault.

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
import functools
import html
import json
import re
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
MAX_TEMPLATES = 100
NO_TOKEN = (
    "No Account or Server API tokens were supplied in the HTTP headers. Please add a header "
    "for either X-Postmark-Server-Token or X-Postmark-Account-Token."
)
TEMPLATE_NOT_FOUND = 1101
ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
TAG = re.compile(r"\{\{\{\s*([\w.]+)\s*\}\}\}|\{\{\s*([\w.]+)\s*\}\}")


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
        self.templates: dict[str, dict[str, Any]] = {}  # alias -> template, TemplateId included
        self.templates_made = 0
        self.batch_paths: list[str] = []  # the endpoint of each accepted batch request

    def fault_body(self, status: int) -> bytes:
        return error(0, "Rate limit exceeded" if status == 429 else "Internal server error")

    def handle(self, request: Request) -> tuple[int, bytes, dict[str, str]] | None:
        if request.path.startswith("/templates"):
            return self.manage_template(request)
        return super().handle(request)

    def check(self, request: Request) -> tuple[int, bytes] | None:
        if request.path not in ("/email/batch", "/email/batchWithTemplates"):
            return 404, error(0, "not found")
        if request.headers.get("x-postmark-server-token") != self.token:
            return 401, error(10, NO_TOKEN)
        if len(request.body) > MAX_BODY_BYTES:
            return 413, error(0, "Payload Too Large")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return 422, error(409, "JSON data required: set Content-Type: application/json")
        try:
            body = orjson.loads(request.body)
        except ValueError:
            return 422, error(402, "Received invalid JSON input.")
        if request.path == "/email/batchWithTemplates":
            if not isinstance(body, dict) or not isinstance(body.get("Messages"), list):
                return 422, error(300, 'Invalid request: expected {"Messages": [...]}')
            body = body["Messages"]
        if not isinstance(body, list) or not all(isinstance(m, dict) for m in body):
            return 422, error(300, "Invalid email request: the batch must be a JSON array")
        if len(body) > MAX_MESSAGES:
            return 422, error(410, "Too many batch messages: at most 500 in one request.")
        request.parsed = body
        return None

    def accept(self, request: Request) -> tuple[bytes, list[str]]:
        results = []
        addresses = []
        with self.lock:
            self.batch_paths.append(request.path)
        templated = request.path == "/email/batchWithTemplates"
        # Message ids of 32 hex digits, unique: the request's random part and the index
        # (one system random draw a request, not one a message).
        request_id = secrets.token_hex(12)
        for index, message in enumerate(request.parsed):
            code, text = self.render(message) if templated else (0, "")
            if not code:
                code, text = self.problem(message)
            if code:
                results.append({"ErrorCode": code, "Message": text})
                continue
            message_id = f"{request_id}{index:08x}"
            addresses.append(addresses_in(message["To"])[0])
            if self.keep_requests:
                with self.lock:
                    self.accepted.append({**message, "MessageID": message_id})
            results.append(
                {"ErrorCode": 0, "Message": "OK", "MessageID": message_id, "To": message["To"]}
            )
        return orjson.dumps(results), addresses

    def problem(self, message: dict[str, Any]) -> tuple[int, str]:
        sender = (addresses_in(str(message.get("From") or "")) or [""])[0]
        if not sender:
            return 300, "Invalid 'From' address: ''."
        if sender not in self.senders:
            return 400, (
                f"The 'From' address you supplied ({sender}) is not a Sender Signature on "
                "your account. Please add and confirm this address in order to be able to "
                "use it in the 'From' field of your messages."
            )
        to = addresses_in(str(message.get("To") or ""))
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
        if not all(isinstance(h, dict) and "Name" in h and "Value" in h for h in headers):
            return 300, "Headers must be a list of {Name, Value}."
        if any(address in self.inactive for address in to):
            return 406, (
                "You tried to send to recipient(s) that have been marked as inactive. Found "
                "inactive addresses: " + ", ".join(a for a in to if a in self.inactive)
            )
        return 0, ""

    def render(self, message: dict[str, Any]) -> tuple[int, str]:
        """Fill ``message``'s Subject, HtmlBody and TextBody from its template, in place."""
        model = message.get("TemplateModel")
        if not isinstance(model, dict):
            return 300, "TemplateModel is required and must be an object."
        with self.lock:
            template = self._template(message.get("TemplateAlias") or message.get("TemplateId"))
        if template is None:
            return TEMPLATE_NOT_FOUND, "The template's 'Alias' or 'TemplateId' was not found."
        for part, pieces in template["_compiled"].items():
            message[part] = _fill(pieces, model)
        return 0, ""

    def _template(self, key: object) -> dict[str, Any] | None:
        if isinstance(key, str) and key in self.templates:
            return self.templates[key]
        for template in self.templates.values():
            if key in (template["Alias"], template["TemplateId"], str(template["TemplateId"])):
                return template
        return None

    def manage_template(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        if request.headers.get("x-postmark-server-token") != self.token:
            return 401, error(10, NO_TOKEN), {}
        if request.method == "DELETE":
            key = request.path.removeprefix("/templates/")
            with self.lock:
                template = self._template(int(key) if key.isdigit() else key)
                if template is None:
                    return 422, error(TEMPLATE_NOT_FOUND, "Template not found."), {}
                del self.templates[template["Alias"]]
            return 200, error(0, f"Template {template['TemplateId']} removed."), {}
        if request.path != "/templates":
            return 404, error(0, "not found"), {}
        try:
            body = orjson.loads(request.body)
        except ValueError:
            return 422, error(402, "Received invalid JSON input."), {}
        refused = self._template_problem(body)
        if refused:
            return 422, error(300, refused), {}
        with self.lock:
            if len(self.templates) >= MAX_TEMPLATES:
                return 422, error(1105, "This server already holds 100 templates."), {}
            if body["Alias"] in self.templates:
                return 422, error(1123, "This alias is already in use on this server."), {}
            self.templates_made += 1
            template = {**body, "TemplateId": 1000 + self.templates_made, "Active": True}
            template["_compiled"] = {
                part: TAG.split(body[part])
                for part in ("Subject", "HtmlBody", "TextBody")
                if body.get(part)
            }
            self.templates[body["Alias"]] = template
        answer = {k: template[k] for k in ("Name", "TemplateId", "Alias", "Active")}
        return 200, json.dumps({**answer, "TemplateType": "Standard"}).encode(), {}

    def _template_problem(self, body: Any) -> str:
        if not isinstance(body, dict) or not body.get("Name") or not body.get("Subject"):
            return "A template needs a Name and a Subject."
        if not body.get("HtmlBody") and not body.get("TextBody"):
            return "A template needs an HtmlBody or a TextBody."
        if not isinstance(body.get("Alias"), str) or not ALIAS.fullmatch(body["Alias"]):
            return "Alias: letters, digits, '.', '-' and '_', starting with a letter."
        for part in ("Subject", "HtmlBody", "TextBody"):
            rest = TAG.sub("", str(body.get(part) or ""))
            if "{{" in rest or "}}" in rest:
                return f"{part}: the stand-in renders variables only, not sections."
        return ""

    def messages(self) -> list[EmailMessage]:
        """Every accepted message as the recipient would read it."""
        with self.lock:
            accepted = list(self.accepted)
        return [_as_email(message) for message in accepted]


@functools.lru_cache(maxsize=4096)
def addresses_in(field: str) -> list[str]:
    """The addresses of a From or To value, as ``email.utils.getaddresses`` reads them;
    ``Name <a@b>`` and a bare address without it (what the benchmark's 500 messages a
    request are), so the stand-in's own CPU does not weigh on the sender's timing."""
    if not any(c in field for c in '",();\\'):
        if "<" not in field:
            return [field.strip()] if field.strip() else []
        if field.count("<") == 1 and field.rstrip().endswith(">"):
            address = field[field.index("<") + 1 : field.rstrip().rindex(">")].strip()
            return [address] if address else []
    return [address for _, address in email.utils.getaddresses([field]) if address]


def mustachio(template: str, model: dict[str, Any]) -> str:
    """Mustachio's variables: ``{{{ x }}}`` as it is, ``{{ x }}`` HTML-escaped."""
    return _fill(TAG.split(template), model)


def _fill(pieces: list[str | None], model: dict[str, Any]) -> str:
    """``pieces``: ``TAG.split`` of a template, split once when it is made (a literal,
    then each tag's raw name or escaped name, then a literal, ...)."""
    out = []
    for index in range(0, len(pieces), 3):
        out.append(pieces[index] or "")
        if index + 2 < len(pieces):
            raw, escaped = pieces[index + 1], pieces[index + 2]
            found: Any = model
            for name in str(raw or escaped).split("."):
                found = found.get(name) if isinstance(found, dict) else None
            text = "" if found is None else str(found)
            out.append(text if raw else html.escape(text))
    return "".join(out)


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
