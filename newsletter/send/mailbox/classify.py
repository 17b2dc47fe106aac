"""What one message in the mailbox is, and who it is about.

Who: only a signed token says that (:mod:`newsletter.send.return_tokens`): the VERP address a
bounce was sent to (or that the complained-about original carried as its Return-Path),
or the ``unsubscribe <token>`` subject of a ``List-Unsubscribe`` mailto, checked against
the link key its subscriber holds now (``link_key_of``). What: the
message's structure. An RFC 3464 delivery status notification (and the many
non-standard bounces) is read by ``flufl.bounce``, GNU Mailman's bounce detectors; an
RFC 5965 abuse report by its ``report-type``; an auto-reply by its RFC 3834 headers.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from typing import Literal

from flufl.bounce import all_failures

from newsletter.send.return_tokens import LinkKeyOf, ReturnClaim, ReturnTokens

Kind = Literal[
    "hard_bounce",  # the address does not exist: subscriber bounced, ledger row failed
    "soft_bounce",  # try-later failures (mailbox full, delays): counted toward a limit
    "complaint",  # an abuse report (ARF): subscriber complained
    "unsubscribe",  # mail to the List-Unsubscribe mailto: subscriber unsubscribed
    "unverified",  # looked like one of the above, but without a valid token: ignored
    "auto_reply",  # out of office and the like: left alone
    "other",  # anything else: left alone for a person to read
    "quarantine",  # cannot be read within bounds (size, nesting, time): set aside
]
ACTED_ON: frozenset[Kind] = frozenset({"hard_bounce", "soft_bounce", "complaint", "unsubscribe"})

# Where a bounce's envelope recipient (our VERP address) shows up, added by the MTA or
# the delivery agent; "To" is where RFC 3464 notifications put it themselves.
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
_AUTO_REPLY_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk", "list"})
# Full mailboxes and over-quota answers are permanent in form but pass with time.
_SOFT_PERMANENT_STATUSES = frozenset({"5.2.2", "5.2.0"})


_POLICY = email.policy.compat32
# How many multipart and message parts a message may hold. Python's parser and its
# walk() recurse once per level, so thousands of nested parts (a 100 KB message) end in
# RecursionError; a bounce has a handful. Counting every container header (not only
# nested ones) is an upper bound of the depth that needs no parsing.
MAX_PARTS = 64
_CONTAINER = re.compile(rb"^content-type:[ \t\r\n]*(?:multipart|message)/", re.I | re.M)
# The Content-Type lines that start a returned original (or its headers).
_ORIGINAL_TYPE = re.compile(
    rb"^content-type:[ \t\r\n]*(?:message/rfc822|text/rfc822-headers)", re.I | re.M
)


def header_end(raw: bytes, start: int = 0, end: int | None = None) -> int:
    """Where the header block that starts at ``start`` ends (-1 without a blank line
    before ``end``): a Maildir file has LF line ends, IMAP and POP3 give CRLF."""
    end = len(raw) if end is None else end
    found = [
        at for at in (raw.find(b"\n\n", start, end), raw.find(b"\n\r\n", start, end)) if at >= 0
    ]
    return min(found, default=-1)


def _headers(raw: bytes) -> Message:
    end = header_end(raw)
    return email.parser.BytesHeaderParser(policy=_POLICY).parsebytes(
        raw if end < 0 else raw[: end + 1]
    )


def _without_returned_original(raw: bytes, headers: Message) -> bytes:
    """A multipart/report without its returned original: parsing it was half the time.

    One pass over the report: each part's header block is searched once, up to the next
    delimiter of the report's own boundary (linear, whatever the body holds).
    """
    boundary = headers.get_boundary() if headers.get_content_type() == "multipart/report" else None
    if not boundary:
        return raw
    dashes = b"--" + boundary.encode("latin-1", "replace")
    delimiter = b"\n" + dashes
    position = raw.find(delimiter, max(header_end(raw), 0))
    while position >= 0:
        after = position + len(delimiter)
        line_end = raw.find(b"\n", after)
        if line_end < 0 or raw.startswith(b"--", after):
            return raw  # the closing delimiter, or the end: no returned original
        following = raw.find(delimiter, line_end)
        part_end = len(raw) if following < 0 else following
        blank = header_end(raw, line_end, part_end)
        if _ORIGINAL_TYPE.search(raw, line_end, part_end if blank < 0 else blank + 1):
            return raw[:position] + b"\r\n" + dashes + b"--\r\n"
        position = following
    return raw


@dataclass(frozen=True)
class Classified:
    key: str  # identifies the message across runs and sources
    kind: Kind
    claim: ReturnClaim | None = None
    reason: str = ""


def message_key(raw: bytes) -> str:
    """SHA-256 of the Message-ID (the same message read over IMAP or POP3), else of the
    bytes; from the header block alone, so a message that cannot be read has one too."""
    return _key(_headers(raw), raw)


def _key(headers: Message, raw: bytes) -> str:
    message_id = str(headers.get("message-id", "")).strip()
    basis = message_id.encode("utf-8", "replace") if message_id else raw
    return hashlib.sha256(basis).hexdigest()


def classify(
    raw: bytes, tokens: ReturnTokens, link_key_of: LinkKeyOf, key: str | None = None
) -> Classified:
    """What ``raw`` is (``key``: its :func:`message_key`, when the caller has it)."""
    headers = _headers(raw)
    key = key or _key(headers, raw)
    readable = _without_returned_original(raw, headers)
    if len(_CONTAINER.findall(readable)) > MAX_PARTS:
        return Classified(
            key, "quarantine", reason=f"more than {MAX_PARTS} nested multipart or message parts"
        )
    # compat32: the fast parser, and the Message type flufl.bounce's detectors expect.
    message = email.message_from_bytes(readable, policy=_POLICY)
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _complaint(key, message, raw, tokens, link_key_of)
    if content_type == "multipart/report" and report_type == "delivery-status":
        return _bounce(key, message, raw, tokens, link_key_of, standard=True)
    if _is_auto_reply(message) and not _from_a_mail_system(message):
        return Classified(key, "auto_reply")
    to_verp = tokens.read_bounce(_recipient_headers(message), link_key_of)
    if to_verp is not None:
        return _bounce(key, message, raw, tokens, link_key_of, standard=False, claim=to_verp)
    subject = _header_text(message, "subject")
    claim = tokens.read_mailto(subject, link_key_of)
    if claim is not None:
        return Classified(key, "unsubscribe", claim, "mailto")
    if subject.strip().lower().startswith("unsubscribe"):
        return Classified(key, "unverified", reason="unsubscribe request without a valid token")
    return Classified(key, "other")


def _bounce(
    key: str,
    message: Message,
    raw: bytes,
    tokens: ReturnTokens,
    link_key_of: LinkKeyOf,
    *,
    standard: bool,
    claim: ReturnClaim | None = None,
) -> Classified:
    temporary, permanent = all_failures(message)
    status, diagnostic = _first_delivery_status(message)
    if not (temporary or permanent):
        # A "delivered"/"relayed" notice, or an out-of-office sent to the return path.
        auto_reply = not standard and _is_auto_reply(message)
        return Classified(key, "auto_reply" if auto_reply else "other", claim)
    claim = (
        claim
        or tokens.read_bounce(_recipient_headers(message), link_key_of)
        or _anywhere(raw, tokens, link_key_of)
    )
    reason = " ".join(part for part in (status, diagnostic) if part) or "bounced"
    if claim is None:
        return Classified(key, "unverified", reason=f"bounce without a valid token ({reason})")
    soft = not permanent or status.startswith("4") or status in _SOFT_PERMANENT_STATUSES
    return Classified(key, "soft_bounce" if soft else "hard_bounce", claim, reason)


def _complaint(
    key: str, message: Message, raw: bytes, tokens: ReturnTokens, link_key_of: LinkKeyOf
) -> Classified:
    feedback_type = ""
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            feedback_type = _feedback_type(part)
    # The token is in the original's Return-Path (our VERP sender) or List-Unsubscribe.
    claim = _anywhere(raw, tokens, link_key_of)
    reason = f"feedback report: {feedback_type or 'abuse'}"
    if claim is None:
        return Classified(key, "unverified", reason=f"{reason} without a valid token")
    return Classified(key, "complaint", claim, reason)


def _feedback_type(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser read the fields as a header block
        first = payload[0] if payload else None
        return str(first.get("feedback-type", "")).strip() if isinstance(first, Message) else ""
    text = payload if isinstance(payload, str) else ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "feedback-type":
            return value.strip()
    return ""


def _first_delivery_status(message: Message) -> tuple[str, str]:
    """``Status`` and ``Diagnostic-Code`` of the first failed recipient, for the record."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:] or blocks:
            if not isinstance(block, Message):
                continue
            status = str(block.get("status", "")).strip()
            if status:
                diagnostic = " ".join(str(block.get("diagnostic-code", "")).split())
                return status.split()[0], diagnostic[:300]
    return "", ""


def _recipient_headers(message: Message) -> str:
    """The raw recipient headers: the token pattern needs no address parsing (which
    would be a third of the time spent on a bounce)."""
    values: list[str] = []
    for name in _RECIPIENT_HEADERS:
        values.extend(str(value) for value in message.get_all(name, []))
    return " ".join(values)


def _anywhere(raw: bytes, tokens: ReturnTokens, link_key_of: LinkKeyOf) -> ReturnClaim | None:
    """A signed VERP address anywhere in the message (the original's headers, usually).

    Safe because only a valid signature counts: a token always names the one person
    it was issued to, wherever it is found.
    """
    return tokens.read_bounce(raw.decode("latin-1"), link_key_of)


def _from_a_mail_system(message: Message) -> bool:
    """A non-standard bounce (Exim's, qmail's) is auto-submitted too: it names the failed
    recipients or comes from the mailer daemon. Only those go on to the bounce detectors."""
    sender = str(message.get("from", "")).lower()
    return "x-failed-recipients" in message or any(
        name in sender for name in ("mailer-daemon", "postmaster", "mail delivery")
    )


def _is_auto_reply(message: Message) -> bool:
    auto_submitted = str(message.get("auto-submitted", "no")).strip().lower()
    precedence = str(message.get("precedence", "")).strip().lower()
    return (
        not auto_submitted.startswith("no")
        or precedence in _AUTO_REPLY_PRECEDENCE
        or "x-autoreply" in message
        or "x-autorespond" in message
    )


def _header_text(message: Message, name: str) -> str:
    """A header decoded from RFC 2047 encoded words, as a mail client may have sent it."""
    value = message.get(name, "")
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError):  # a malformed encoded word, an unknown charset
        return str(value)
