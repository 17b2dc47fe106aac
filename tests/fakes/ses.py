"""A stand-in for SES v2's bulk sending and stored templates, on 127.0.0.1.

moto (the SES of the other tests) has neither ``SendBulkEmail`` nor SES v2 templates,
so this serves them as botocore's service model for ``sesv2`` (2019-09-27) shapes them,
over HTTP with JSON, errors as ``x-amzn-ErrorType`` and ``{"message"}``:

- ``POST /v2/email/templates`` (CreateEmailTemplate): a ``TemplateName`` of ASCII
  letters, digits, ``_`` and ``-`` (at most 64) not in use, ``TemplateContent`` with a
  Subject and an Html or Text part, at most 500 KB; only ``{{x}}`` and ``{{{x}}}``
  variables (what it renders);
- ``DELETE /v2/email/templates/{TemplateName}`` (DeleteEmailTemplate);
- ``GET /v2/email/account`` (GetAccount) and SES v1's ``GetSendQuota`` (``POST /``,
  form data, XML), the account's ``MaxSendRate`` (``max_send_rate``);
- ``POST /v2/email/outbound-bulk-emails`` (SendBulkEmail): 1 to 50
  ``BulkEmailEntries``, a stored template that exists, a verified From, at most 15
  headers in ``DefaultContent.Template.Headers`` and in each entry's
  ``ReplacementHeaders`` (printable ASCII, a name of at most 126 without ``:``, a value
  of at most 995, never one SES sets itself: From, To, Subject, Date...), each entry's
  ``ReplacementTemplateData`` a JSON object of at most 262,144 characters, tags of
  ASCII letters, digits, ``_`` and ``-``. One ``BulkEmailEntryResults`` item per entry,
  in order: ``SUCCESS`` with a ``MessageId``, or what ``entry_answers`` scripts for an
  address (``MESSAGE_REJECTED``, ``ACCOUNT_THROTTLED``...), ``INVALID_PARAMETER`` for
  an address SES cannot read, ``CONFIGURATION_SET_NOT_FOUND`` for an unknown
  configuration set.

Every request needs a valid SigV4 ``Authorization`` (service ``ses``, the test
credentials' secret), checked as SES checks it (403 otherwise). Each accepted
entry is rendered as SES renders a stored template (``{{x}}`` and ``{{{x}}}`` both as
they are: SES does not escape HTML), its headers the template's overlaid by the
entry's::

    with FakeSes() as ses:          # AWS_ENDPOINT_URL=ses.url
        ses.entry_answers["gone@example.org"] = [("MESSAGE_REJECTED", "...")]
        ses.messages()              # (MessageId, EmailMessage) of every accepted entry

The checks themselves are tests/fakes/ses_checks.py's. ``python -m tests.fakes.ses`` serves on
its own for the benchmark.
"""

from __future__ import annotations

import email
import email.policy
import json
import secrets
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from tests.fakes.http_api import FakeApi, Request, serve_until_stdin_closes
from tests.fakes.ses_checks import (
    VARIABLE,
    bare_address,
    bulk_problem,
    readable,
    signed,
    template_problem,
)

SENDER = "letters@breastfeedingworld.example"  # the example project's From, verified
REGION = "eu-west-1"
BULK_PATH = "/v2/email/outbound-bulk-emails"
TEMPLATES_PATH = "/v2/email/templates"


def error(code: str, message: str, status: int = 400) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": code}


class RenderingFailure(Exception):
    """A variable with no value: SES accepts the entry, then drops the message."""


class FakeSes(FakeApi):
    keep_alive = True

    def __init__(
        self,
        *,
        senders: tuple[str, ...] = (SENDER,),
        configuration_sets: tuple[str, ...] = ("newsletter",),
        max_send_rate: float = 1000.0,
        keep_requests: bool = True,
    ) -> None:
        super().__init__(keep_requests=keep_requests)
        self.senders = set(senders)
        self.configuration_sets = set(configuration_sets)
        self.max_send_rate = max_send_rate
        self.templates: dict[str, dict[str, Any]] = {}  # name -> content, split
        self.templates_made: list[str] = []
        self.templates_deleted: list[str] = []
        # address -> the next entry results for it, (Status, Error), one per attempt
        self.entry_answers: dict[str, list[tuple[str, str]]] = {}
        self.accepted: list[dict[str, Any]] = []  # each accepted entry, rendered
        self.rendering_failures: list[str] = []
        self.entries_per_request: list[int] = []
        self.throttle_templates = 0  # CreateEmailTemplate calls to answer 429
        # Addresses for which SES refuses the whole request (400 "Illegal address").
        self.illegal: set[str] = set()

    # Faults, as SES words them.

    def throttle_next(self, *, times: int = 1) -> None:
        self.fail_next(
            429,
            times=times,
            headers={"x-amzn-ErrorType": "TooManyRequestsException"},
            body=b'{"message": "Maximum sending rate exceeded."}',
        )

    def refuse_next(self, code: str, message: str, *, status: int = 400) -> None:
        self.fail_next(
            status,
            headers={"x-amzn-ErrorType": code},
            body=json.dumps({"message": message}).encode(),
        )

    # Requests.

    def handle(self, request: Request) -> tuple[int, bytes, dict[str, str]] | None:
        if not signed(request):
            return error("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        if request.path.startswith(TEMPLATES_PATH):
            return self.manage_template(request)
        if request.path == "/" and request.method == "POST":
            return self.send_quota(request)
        return super().handle(request)

    def answer_get(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        if not signed(request):
            return error("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        if request.path != "/v2/email/account":
            return error("NotFoundException", f"unknown path {request.path}", 404)
        quota = {"Max24HourSend": 1e6, "MaxSendRate": self.max_send_rate, "SentLast24Hours": 0}
        answer = {"SendQuota": quota, "SendingEnabled": True, "ProductionAccessEnabled": True}
        return 200, json.dumps(answer).encode(), {}

    def send_quota(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        form = parse_qs(request.body.decode())
        if form.get("Action") != ["GetSendQuota"]:
            return error("InvalidAction", "only GetSendQuota is served here")
        xml = (
            '<GetSendQuotaResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">'
            f"<GetSendQuotaResult><Max24HourSend>1000000.0</Max24HourSend>"
            f"<MaxSendRate>{self.max_send_rate}</MaxSendRate>"
            "<SentLast24Hours>0.0</SentLast24Hours></GetSendQuotaResult>"
            f"<ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId>"
            "</ResponseMetadata></GetSendQuotaResponse>"
        )
        return 200, xml.encode(), {"Content-Type": "text/xml"}

    def check(self, request: Request) -> tuple[int, bytes] | None:
        if request.path != BULK_PATH:
            return _short(error("NotFoundException", f"unknown path {request.path}", 404))
        try:
            body = orjson.loads(request.body)
        except ValueError:
            return _short(error("BadRequestException", "the body is not JSON"))
        problem = bulk_problem(body)
        if problem:
            return _short(error("BadRequestException", problem))
        with self.lock:
            template = self.templates.get(body["DefaultContent"]["Template"]["TemplateName"])
        if template is None:
            return _short(error("NotFoundException", "Template does not exist", 404))
        sender = bare_address(body["FromEmailAddress"])
        if sender not in self.senders:
            return _short(
                error(
                    "MessageRejected",
                    "Email address is not verified. The following identities failed the "
                    f"check in region {REGION.upper()}: {sender}",
                )
            )
        for entry in body["BulkEmailEntries"]:
            if any(bare_address(to) in self.illegal for to in entry["Destination"]["ToAddresses"]):
                return _short(error("BadRequestException", "Illegal address"))
        request.parsed = (body, template)
        return None

    def accept(self, request: Request) -> tuple[bytes, list[str]]:
        body, template = request.parsed
        shared_headers = body["DefaultContent"]["Template"].get("Headers") or []
        default_tags = _tags(body.get("DefaultEmailTags"))
        known_set = body.get("ConfigurationSetName") in (None, *self.configuration_sets)
        request_id = secrets.token_hex(12)
        results, addresses = [], []
        for index, entry in enumerate(body["BulkEmailEntries"]):
            to = entry["Destination"]["ToAddresses"]
            scripted = self._scripted(to[0]) if self.entry_answers else None
            if scripted is not None:
                results.append({"Status": scripted[0], "Error": scripted[1]})
                continue
            if not known_set:
                results.append(
                    {
                        "Status": "CONFIGURATION_SET_NOT_FOUND",
                        "Error": f"Configuration set <{body['ConfigurationSetName']}> "
                        "does not exist.",
                    }
                )
                continue
            if not all(readable(address) for address in to):
                results.append({"Status": "INVALID_PARAMETER", "Error": "Illegal address"})
                continue
            # Unique: the request's random part and the index (one draw a request, not
            # one an entry: the stand-in's CPU is the sender's machine's in the benchmark).
            message_id = f"0102{request_id}-{index:04x}-000000"
            results.append({"Status": "SUCCESS", "MessageId": message_id})
            addresses.append(bare_address(to[0]))
            if self.keep_requests:
                self._keep(body, template, entry, message_id, shared_headers, default_tags)
        with self.lock:
            self.entries_per_request.append(len(body["BulkEmailEntries"]))
        return orjson.dumps({"BulkEmailEntryResults": results}), addresses

    def _scripted(self, address: str) -> tuple[str, str] | None:
        with self.lock:
            queue = self.entry_answers.get(bare_address(address))
            return queue.pop(0) if queue else None

    def _keep(
        self,
        body: dict[str, Any],
        template: dict[str, Any],
        entry: dict[str, Any],
        message_id: str,
        shared_headers: list[dict[str, str]],
        default_tags: dict[str, str],
    ) -> None:
        data = json.loads(entry["ReplacementEmailContent"]["ReplacementTemplate"][
            "ReplacementTemplateData"
        ])  # fmt: skip
        try:
            rendered = {part: _fill(pieces, data) for part, pieces in template.items()}
        except RenderingFailure as failure:
            with self.lock:
                self.rendering_failures.append(str(failure))
            return
        headers = {h["Name"].lower(): (h["Name"], h["Value"]) for h in shared_headers}
        headers |= {h["Name"].lower(): (h["Name"], h["Value"]) for h in entry.get(
            "ReplacementHeaders") or []}  # fmt: skip
        kept = {
            "MessageId": message_id,
            "From": body["FromEmailAddress"],
            "ReplyTo": body.get("ReplyToAddresses") or [],
            "To": entry["Destination"]["ToAddresses"],
            "Headers": list(headers.values()),
            "Tags": default_tags | _tags(entry.get("ReplacementTags")),
            "ConfigurationSetName": body.get("ConfigurationSetName"),
            **rendered,
        }
        with self.lock:
            self.accepted.append(kept)

    def manage_template(self, request: Request) -> tuple[int, bytes, dict[str, str]]:
        if request.method == "DELETE":
            name = unquote(request.path.removeprefix(TEMPLATES_PATH + "/"))
            with self.lock:
                if self.templates.pop(name, None) is None:
                    return error("NotFoundException", f"Template {name} does not exist.", 404)
                self.templates_deleted.append(name)
            return 200, b"{}", {}
        if request.path != TEMPLATES_PATH or request.method != "POST":
            return error("NotFoundException", f"unknown path {request.path}", 404)
        with self.lock:
            throttled, self.throttle_templates = (
                self.throttle_templates > 0,
                max(self.throttle_templates - 1, 0),
            )
        if throttled:  # SES: CreateEmailTemplate at most once a second
            return error("TooManyRequestsException", "Too Many Requests", 429)
        try:
            body = orjson.loads(request.body)
        except ValueError:
            return error("BadRequestException", "the body is not JSON")
        problem = template_problem(body)
        if problem:
            return error("BadRequestException", problem)
        content = body["TemplateContent"]
        with self.lock:
            if body["TemplateName"] in self.templates:
                return error(
                    "AlreadyExistsException", f"Template {body['TemplateName']} already exists."
                )
            self.templates[body["TemplateName"]] = {
                part: VARIABLE.split(content[part])
                for part in ("Subject", "Html", "Text")
                if content.get(part)
            }
            self.templates_made.append(body["TemplateName"])
        return 200, b"{}", {}

    # What arrived.

    def messages(self) -> list[tuple[str, EmailMessage]]:
        """(MessageId, message as its reader gets it) of every accepted entry."""
        with self.lock:
            accepted = list(self.accepted)
        return [(kept["MessageId"], _as_email(kept)) for kept in accepted]

    def tags(self) -> dict[str, dict[str, str]]:
        """MessageId -> the message's tags (what SES echoes in its events)."""
        with self.lock:
            return {kept["MessageId"]: kept["Tags"] for kept in self.accepted}


def _short(answer: tuple[int, bytes, dict[str, str]]) -> tuple[int, bytes]:
    # FakeApi.check answers without headers: the error code goes in the body, which
    # botocore reads as well ("__type").
    status, body, headers = answer
    message = json.loads(body)["message"]
    return status, json.dumps({"__type": headers["x-amzn-ErrorType"], "message": message}).encode()


def _tags(tags: Any) -> dict[str, str]:
    return {tag["Name"]: tag["Value"] for tag in tags or []}


def _fill(pieces: list[str | None], data: dict[str, Any]) -> str:
    """``pieces``: ``VARIABLE.split`` of a template part; each variable as it is."""
    out = []
    for index in range(0, len(pieces), 3):
        out.append(pieces[index] or "")
        if index + 2 < len(pieces):
            name = str(pieces[index + 1] or pieces[index + 2])
            if name not in data:
                raise RenderingFailure(f"Attribute '{name}' is not present in the rendering data")
            out.append(str(data[name]))
    return "".join(out)


def _as_email(kept: dict[str, Any]) -> EmailMessage:
    built = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    built["From"] = kept["From"]
    built["To"] = ", ".join(kept["To"])
    if kept["ReplyTo"]:
        built["Reply-To"] = ", ".join(kept["ReplyTo"])
    built["Subject"] = kept["Subject"]
    for name, value in kept["Headers"]:
        built[name] = value
    built.set_content(kept.get("Text", ""), cte="quoted-printable")
    built.add_alternative(kept.get("Html", ""), subtype="html", cte="quoted-printable")
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


if __name__ == "__main__":
    serve_until_stdin_closes(FakeSes(keep_requests=False))
