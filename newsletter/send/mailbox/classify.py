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

from newsletter.send.mailbox.blocks import is_policy_block, quoted_replies
from newsletter.send.return_tokens import LinkKeyOf, ReturnClaim, ReturnTokens

Kind = Literal[
    "hard_bounce",  # the address does not exist: subscriber bounced, ledger row failed
    "soft_bounce",  # try-later failures (mailbox full, delays): counted toward a limit
    "blocked",  # refused for the content or the sender (policy): counted, never suppressed
    "complaint",  # an abuse report (ARF): subscriber complained
    "unsubscribe",  # mail to the List-Unsubscribe mailto: subscriber unsubscribed
    "unverified",  # looked like one of the above, but without a valid token: ignored
    "auto_reply",  # out of office and the like: left alone
    "other",  # anything else: left alone for a person to read
    "quarantine",  # cannot be read within bounds (size, nesting, time): set aside
]
ACTED_ON: frozenset[Kind] = frozenset(
    {"hard_bounce", "soft_bounce", "blocked", "complaint", "unsubscribe"}
)

# Where a bounce's envelope recipient (our VERP address) shows up, added by the MTA or
# the delivery agent; "To" is where RFC 3464 notifications put it themselves.
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
# Precedence: bulk/junk/list is set by auto-responders and by bounce programs alike
# (MDaemon's hard bounces): it makes a message an auto-reply only once the bounce
# detectors found no failure in it.
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
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


def _containers(raw: bytes) -> int:
    """An upper bound of how deep ``raw`` nests (see :data:`MAX_PARTS`)."""
    lowered = raw.lower()
    if lowered.count(b"multipart/") + lowered.count(b"message/") <= MAX_PARTS:
        return 0  # the common case, without the slower line-anchored count
    return len(_CONTAINER.findall(raw))


def read_headers(raw: bytes) -> Message:
    """The header block of ``raw`` alone (linear; what a message's key and a report's
    boundary need, before anything else is parsed)."""
    end = header_end(raw)
    return email.parser.BytesHeaderParser(policy=_POLICY).parsebytes(
        raw if end < 0 else raw[: end + 1]
    )


# One header of the top header block, with its folded lines: what the parser would
# give for the first such header, in most messages (a cheap look before any parsing).
_TOP_HEADER = {
    name: re.compile(rb"^" + name + rb":[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M)
    for name in (b"content-type", b"message-id")
}


def _top_header(raw: bytes, name: bytes) -> str | None:
    end = header_end(raw)
    found = _TOP_HEADER[name].search(raw, 0, len(raw) if end < 0 else end + 1)
    return None if found is None else found[1].decode("latin-1")


def quick_key(raw: bytes) -> str:
    """:func:`message_key` without parsing the headers, for a one-line Message-ID (the
    usual case); the parser's otherwise. To look up earlier runs only: a rare message
    for which the two differ is read again, and then known by its key."""
    message_id = _top_header(raw, b"message-id")
    if message_id is None or "\n" in message_id:
        return message_key(read_headers(raw), raw)
    message_id = message_id.strip()
    basis = message_id.encode("latin-1") if message_id else raw
    return hashlib.sha256(basis).hexdigest()


def _without_returned_original(raw: bytes) -> bytes:
    """A multipart/report without its returned original: parsing it was half the time.

    One pass over the report: each part's header block is searched once, up to the next
    delimiter of the report's own boundary (linear, whatever the body holds).
    """
    content_type = _top_header(raw, b"content-type")
    if content_type is None or "multipart/report" not in content_type.lower():
        return raw
    headers = Message()
    headers["content-type"] = content_type
    boundary = headers.get_boundary()
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


def message_key(headers: Message, raw: bytes) -> str:
    """SHA-256 of the Message-ID (the same message read over IMAP or POP3), else of the
    bytes. ``headers``: the parsed message, or its header block alone
    (:func:`read_headers`: a message that cannot be read has a key too)."""
    message_id = str(headers.get("message-id", "")).strip()
    basis = message_id.encode("utf-8", "replace") if message_id else raw
    return hashlib.sha256(basis).hexdigest()


def classify(raw: bytes, tokens: ReturnTokens, link_key_of: LinkKeyOf) -> Classified:
    """What ``raw`` is."""
    readable = _without_returned_original(raw)
    if _containers(readable) > MAX_PARTS:
        reason = f"more than {MAX_PARTS} nested multipart or message parts"
        return Classified(message_key(read_headers(raw), raw), "quarantine", reason=reason)
    # compat32: the fast parser, and the Message type flufl.bounce's detectors expect.
    message = email.message_from_bytes(readable, policy=_POLICY)
    key = message_key(message, raw)
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _complaint(key, message, raw, tokens, link_key_of)
    if content_type == "multipart/report" and report_type == "delivery-status":
        return _bounce(key, message, raw, tokens, link_key_of, standard=True)
    # A verified mailto unsubscribe counts whatever its headers say: some mail programs
    # send it with "Auto-Submitted: auto-generated".
    subject = _header_text(message, "subject")
    claim = tokens.read_mailto(subject, link_key_of)
    if claim is not None:
        return Classified(key, "unsubscribe", claim, "mailto")
    if _says_auto_reply(message) and not _from_a_mail_system(message):
        return Classified(key, "auto_reply")
    to_verp = tokens.read_bounce(_recipient_headers(message), link_key_of)
    if to_verp is not None:
        return _bounce(key, message, raw, tokens, link_key_of, standard=False, claim=to_verp)
    if _bulk_precedence(message):
        return Classified(key, "auto_reply")
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
        auto_reply = not standard and (_says_auto_reply(message) or _bulk_precedence(message))
        return Classified(key, "auto_reply" if auto_reply else "other", claim)
    claim = (
        claim
        or tokens.read_bounce(_recipient_headers(message), link_key_of)
        or _anywhere(raw, tokens, link_key_of)
    )
    reason = " ".join(part for part in (status, diagnostic) if part) or "bounced"
    if claim is None:
        return Classified(key, "unverified", reason=f"bounce without a valid token ({reason})")
    if is_policy_block(status, diagnostic or quoted_replies(message)):
        return Classified(key, "blocked", claim, reason[:300])
    reason = reason[:300]
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
                diagnostic = " ".join(str(block.get("diagnostic-code", ""))[:4000].split())
                return status.split()[0], diagnostic
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


def _says_auto_reply(message: Message) -> bool:
    """RFC 3834's ``Auto-Submitted`` (or the older X- headers) on an auto-reply."""
    auto_submitted = str(message.get("auto-submitted", "no")).strip().lower()
    precedence = str(message.get("precedence", "")).strip().lower()
    return (
        not auto_submitted.startswith("no")
        or precedence == "auto_reply"
        or "x-autoreply" in message
        or "x-autorespond" in message
    )


def _bulk_precedence(message: Message) -> bool:
    return str(message.get("precedence", "")).strip().lower() in _BULK_PRECEDENCE


def _header_text(message: Message, name: str) -> str:
    """A header decoded from RFC 2047 encoded words, as a mail client may have sent it."""
    value = message.get(name, "")
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError):  # a malformed encoded word, an unknown charset
        return str(value)
