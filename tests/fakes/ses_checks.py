"""What the SES v2 stand-in (tests/fakes/ses.py) refuses, as SES does: a request not
signed with SigV4 by the test credentials, a ``SendBulkEmail`` or a template outside the
shapes and limits of botocore's ``sesv2`` service model and SES's developer guide."""

from __future__ import annotations

import hmac
import re
from typing import Any

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.http_api import Request

SECRET_KEY = "testing"  # AWS_SECRET_ACCESS_KEY of tests.fakes.moto.CREDENTIALS
MAX_ENTRIES = 50
MAX_TEMPLATE_DATA = 262_144
MAX_TEMPLATE_BYTES = 500 * 1024
MAX_HEADERS = 15
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TAG_TEXT = re.compile(r"[A-Za-z0-9_-]{1,256}")
HEADER_NAME = re.compile(r"[!-9;-~]{1,126}")  # printable ASCII but the colon
HEADER_VALUE = re.compile(r"[ -~]{0,995}")
# The headers SES sets itself on templated and bulk mail, which a request may not set
# (SES Developer Guide, "Amazon SES header fields").
SES_SETS = frozenset(
    name.lower()
    for name in (
        "BCC", "CC", "Content-Disposition", "Content-Type", "Date", "From", "Message-ID",
        "MIME-Version", "Reply-To", "Return-Path", "Subject", "To",
    )
)  # fmt: skip
VARIABLE = re.compile(r"\{\{\{\s*([\w.]+)\s*\}\}\}|\{\{\s*([\w.]+)\s*\}\}")


SIGNATURE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def signed(request: Request) -> bool:
    """Whether ``request`` carries a SigV4 signature of its method, path, signed headers
    and body with the test credentials (AWS_SECRET_ACCESS_KEY "testing"), as SES checks."""
    found = SIGNATURE.fullmatch(request.headers.get("authorization", ""))
    if found is None or found["service"] != "ses":
        return False
    names = found["headers"].split(";")
    if "host" not in names or any(name not in request.headers for name in names):
        return False
    signed = AWSRequest(
        method=request.method,
        url=f"http://{request.headers['host']}{request.path}",
        data=request.body,
        headers={name: request.headers[name] for name in names},
    )
    signed.context["timestamp"] = request.headers.get("x-amz-date", "")
    auth = SigV4Auth(Credentials(found["key"], SECRET_KEY), "ses", found["region"])
    expected = auth.signature(auth.string_to_sign(signed, auth.canonical_request(signed)), signed)
    return hmac.compare_digest(expected, found["signature"])


def bulk_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "the request must be a JSON object"
    template = (body.get("DefaultContent") or {}).get("Template")
    if not isinstance(template, dict) or not template.get("TemplateName"):
        return "DefaultContent.Template.TemplateName is required (a stored template)"
    if not body.get("FromEmailAddress"):
        return "FromEmailAddress is required"
    entries = body.get("BulkEmailEntries")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        return "BulkEmailEntries: from 1 to 50 entries"
    problem = headers_problem(template.get("Headers"))
    if problem:
        return problem
    if not tags_ok(body.get("DefaultEmailTags")):
        return "DefaultEmailTags: names and values of ASCII letters, digits, '_' and '-'"
    for entry in entries:
        to = (entry.get("Destination") or {}).get("ToAddresses")
        if not isinstance(to, list) or not 1 <= len(to) <= MAX_ENTRIES:
            return "each entry needs Destination.ToAddresses (at most 50)"
        data = ((entry.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}).get(
            "ReplacementTemplateData"
        )
        if not isinstance(data, str) or len(data) > MAX_TEMPLATE_DATA:
            return "ReplacementTemplateData: a JSON object of at most 262144 characters"
        try:
            if not isinstance(orjson.loads(data), dict):
                return "ReplacementTemplateData must be a JSON object"
        except orjson.JSONDecodeError:
            return "ReplacementTemplateData is not JSON"
        problem = headers_problem(entry.get("ReplacementHeaders"))
        if problem:
            return problem
        if not tags_ok(entry.get("ReplacementTags")):
            return "ReplacementTags: names and values of ASCII letters, digits, '_' and '-'"
    return ""


def headers_problem(headers: Any) -> str:
    if headers is None:
        return ""
    if not isinstance(headers, list) or len(headers) > MAX_HEADERS:
        return "at most 15 headers"
    for header in headers:
        name, value = str(header.get("Name", "")), str(header.get("Value", ""))
        if not HEADER_NAME.fullmatch(name) or not HEADER_VALUE.fullmatch(value):
            return f"header {name!r}: printable ASCII, a name of 126 and a value of 995"
        if len(name) + len(value) > 996:
            return f"header {name!r}: name and value longer than 996 characters"
        if name.lower() in SES_SETS:
            return f"header {name!r} is set by SES and may not be given"
    return ""


def tags_ok(tags: Any) -> bool:
    return tags is None or all(
        TAG_TEXT.fullmatch(str(tag.get("Name"))) and TAG_TEXT.fullmatch(str(tag.get("Value")))
        for tag in tags
    )


def template_problem(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("TemplateName"), str):
        return "TemplateName is required"
    if not TEMPLATE_NAME.fullmatch(body["TemplateName"]):
        return "TemplateName: ASCII letters, digits, '_' and '-', at most 64"
    content = body.get("TemplateContent")
    if not isinstance(content, dict) or not content.get("Subject"):
        return "TemplateContent needs a Subject"
    if not content.get("Html") and not content.get("Text"):
        return "TemplateContent needs Html or Text"
    size = sum(len(str(content.get(part) or "").encode()) for part in ("Subject", "Html", "Text"))
    if size > MAX_TEMPLATE_BYTES:
        return "a template is at most 500 KB"
    for part in ("Subject", "Html", "Text"):
        rest = VARIABLE.sub("", str(content.get(part) or ""))
        if "{{" in rest or "}}" in rest:
            return f"{part}: the stand-in renders variables only, not other Handlebars"
    return ""


def bare_address(field: str) -> str:
    field = field.strip()
    if field.endswith(">") and "<" in field:
        return field[field.rindex("<") + 1 : -1]
    return field


def readable(field: str) -> bool:
    local, at, domain = bare_address(field).rpartition("@")
    return bool(at and local and domain and local.isascii() and " " not in local)
