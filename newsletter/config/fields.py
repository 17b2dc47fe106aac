"""The types of the config's values (an address, a URL, a colour, a slug, a greeting...),
each with the check that says what to write, and ``Schema``, the base of every section."""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator

from newsletter.errors import SegmentError
from newsletter.segments.language import FIELD_OPS, parse

# The form nearly every From address has: an ASCII local part of letters, digits and
# . _ + - between them, and a domain of letter-digit-hyphen labels under an alphabetic
# top-level domain. email-validator accepts each such address and changes only the
# domain's case (tests/render/test_config.py checks this against it), so these skip
# importing it: compiling its Unicode tables costs a tenth of a `newsletter build`.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
# email-validator's SPECIAL_USE_DOMAIN_NAMES (a test keeps the two equal): never deliverable.
_SPECIAL_USE_DOMAINS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _plain_address(value: str) -> str | None:
    """``value`` as email-validator would normalise it, if it has the plain form."""
    match = _PLAIN_ADDRESS.fullmatch(value)
    if match is None or len(value) > 254 or value.index("@") > 64:
        return None
    domain = match["domain"].lower()
    # "--" marks IDNA labels (xn--), which email-validator decodes: leave them to it.
    if "--" in domain or domain.rpartition(".")[2] in _SPECIAL_USE_DOMAINS:
        return None
    return f"{value[: match.start('domain')]}{domain}"


def _valid_address(value: str) -> str:
    plain = _plain_address(value)
    if plain is not None:
        return plain
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(f"not a valid address ({error})") from None


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL, like https://example.org")
    return value


def _base_url(value: str) -> str:
    return _http_url(value).rstrip("/")


def _color(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}", value):
        raise ValueError("must be a hex colour like #b0416f")
    return value


def _time_zone(value: str) -> str:
    # A name from the IANA database, so a time like "2026-12-01 09:00" means one instant.
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return value


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError("must be lowercase letters, digits, '-' or '_'")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


# One label of a DNS name: letters, digits and inner hyphens.
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def dns_name(value: str) -> str:
    """``value`` in lowercase if it is a DNS name (a selector, a domain); ValueError if not."""
    if not re.fullmatch(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*", value) or len(value) > 253:
        raise ValueError(
            "must be a DNS name: letters, digits and hyphens in dot-separated labels, "
            "like s1 or example.org"
        )
    return value.lower()


EmailAddress = Annotated[str, AfterValidator(_valid_address)]
DnsName = Annotated[str, AfterValidator(dns_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]  # no trailing slash: paths get appended
Color = Annotated[str, AfterValidator(_color)]
Slug = Annotated[str, AfterValidator(_slug)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]  # an IANA name


def _segment(value: str) -> str:
    try:
        parse(value)
    except SegmentError as error:
        raise ValueError(f"{error}; see docs/segments.md") from None
    return value


def _segment_name(value: str) -> str:
    if value.lower() in FIELD_OPS:
        raise ValueError(
            f"{value!r} is a field of the segment language; name the segment otherwise"
        )
    return _slug(value)


SegmentText = Annotated[str, AfterValidator(_segment)]
SegmentName = Annotated[str, AfterValidator(_segment_name)]
OneLine = Annotated[str, AfterValidator(_one_line)]


def _greeting(value: object) -> str | Literal[False]:
    if value is False:
        return False
    if not isinstance(value, str):
        raise ValueError("write a greeting line such as 'Hi {first_name},', or false for none")
    _one_line(value)
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    except ValueError:
        fields = {"?"}
    if not fields <= {"first_name"}:
        raise ValueError(
            "the only placeholder a greeting may hold is {first_name}, as in "
            "'Dear {first_name},'; write false for no greeting"
        )
    return value


# A greeting line such as "Hi {first_name},", or false for none.
Greeting = Annotated[str | Literal[False], PlainValidator(_greeting)]


class Schema(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    # defer_build: each model's validator is built when first used, not at import, so a
    # command pays only for the models it validates (the whole config: one schema build).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)
