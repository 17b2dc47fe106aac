"""Headers and RFC 5322 messages: what every provider and the preview agree on.

The one home of what headers a copy of an issue carries. :func:`copy_headers` puts a
copy's headers in their order: From, Reply-To, To, Subject, Date, Message-ID, then its
own (``List-Unsubscribe`` with the same ``/u/<token>`` URL as the body and, with
``unsubscribe_mailto``, the mailto whose subject carries the copy's signed token), then
those shared by every copy of the campaign (:func:`shared_list_headers`: RFC 8058
``List-Unsubscribe-Post``, ``List-Id``, Gmail's ``Feedback-ID``). Every path builds
them here: a campaign's copies (``send.copies.RecipientBuilder`` and
``send.providers.local_message``, or a provider's API), a test send, and the preview's
Headers view, which shows a reader's copy as it is sent. :func:`message_headers` is the
same for one message given its parts. :func:`~newsletter.render.header_lines.header_line`
writes them.

Every header value is refused if it holds a line break: a subject from front matter
or a name from a signup form must never be able to add a ``Bcc:``.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import secrets
from collections.abc import Mapping, Sequence
from email.utils import format_datetime, make_msgid

from newsletter.config import Config
from newsletter.render.header_lines import format_address, header_line, safe_header

ONE_CLICK = "List-Unsubscribe=One-Click"
# The subject of the List-Unsubscribe mailto: "unsubscribe <the copy's signed token>".
UNSUBSCRIBE_SUBJECT = "unsubscribe"
# Feedback-ID: each field at most this long, of these characters only.
FEEDBACK_FIELD_MAX = 40
_NOT_IN_FEEDBACK_ID = re.compile(r"[^a-z0-9._-]+")
EMPTY: Mapping[str, str] = {}


class ListUnsubscribe:
    """RFC 2369 ``List-Unsubscribe`` of one copy: its HTTPS URL first (RFC 8058), then,
    with ``unsubscribe_mailto``, the mailto whose subject is ``unsubscribe <token>`` (the
    copy's signed mailto token, ``send.return_tokens``), or ``unsubscribe`` where there is
    none (a test send). Made once per run; a call per copy (the sender's hot path)."""

    def __init__(self, config: Config) -> None:
        mailto = config.unsubscribe_mailto
        self._mailto = (
            f", <mailto:{safe_header('List-Unsubscribe', mailto)}?subject={UNSUBSCRIBE_SUBJECT}"
            if mailto
            else None
        )

    def __call__(self, unsubscribe_url: str, mailto_token: str | None = None) -> str:
        """``unsubscribe_url`` comes from ``tokens.Links`` (no line breaks possible)."""
        if self._mailto is None:
            return f"<{unsubscribe_url}>"
        if mailto_token is None:
            return f"<{unsubscribe_url}>{self._mailto}>"
        return f"<{unsubscribe_url}>{self._mailto}%20{mailto_token}>"


def list_unsubscribe(config: Config, unsubscribe_url: str, mailto_token: str | None = None) -> str:
    """One copy's ``List-Unsubscribe`` (see :class:`ListUnsubscribe`)."""
    url = safe_header("List-Unsubscribe", unsubscribe_url)
    return ListUnsubscribe(config)(url, mailto_token)


def feedback_id(config: Config, *, campaign: str, topics: Sequence[str]) -> str:
    """Gmail's ``Feedback-ID`` (its feedback loop, shown in Postmaster Tools):
    ``campaign:topic:newsletter:sender``, the same in every copy of a campaign. The
    fields: the issue's slug (its campaign's key), its topics joined by ``+`` (or
    ``all``), the name part of the list id, the From address's domain. Each is cut to
    letters, digits, ``.``, ``_`` and ``-`` (no colon, no space, nothing a reader
    typed) and at most :data:`FEEDBACK_FIELD_MAX` characters."""
    list_id = config.list_id_header.rpartition("<")[2].rstrip(">")
    topic = "+".join(_feedback_field(name) for name in sorted(topics))
    fields = (
        _feedback_field(campaign),
        topic[:FEEDBACK_FIELD_MAX].rstrip("+") or "all",
        _feedback_field(list_id.partition(".")[0]),
        _feedback_field(config.sender.email.rpartition("@")[2]),
    )
    return ":".join(fields)


def _feedback_field(value: str) -> str:
    cleaned = _NOT_IN_FEEDBACK_ID.sub("-", value.lower()).strip(".-_")
    return cleaned[:FEEDBACK_FIELD_MAX].rstrip(".-_") or "none"


def shared_list_headers(config: Config, *, campaign: str, topics: Sequence[str]) -> dict[str, str]:
    """The list headers that are the same in every copy of ``campaign`` (the issue's
    slug) for ``topics``."""
    return {
        "List-Unsubscribe-Post": ONE_CLICK,
        "List-Id": safe_header("List-Id", config.list_id_header),
        "Feedback-ID": feedback_id(config, campaign=campaign, topics=topics),
    }


def copy_headers(
    *,
    sender: str,
    reply_to: str | None,
    to: str,
    subject: str,
    message_id: str,
    date: dt.datetime | None = None,
    own: Mapping[str, str] = EMPTY,
    shared: Mapping[str, str] = EMPTY,
) -> dict[str, str]:
    """Every header of one copy, in the order they are written: From, Reply-To, To,
    Subject, Date, Message-ID, the copy's own (List-Unsubscribe), those every copy of
    the campaign shares. The values are the readable forms (:func:`format_address`, the
    subject as typed); :func:`header_line` writes them."""
    headers = {"From": sender}
    if reply_to:
        headers["Reply-To"] = reply_to
    headers |= {
        "To": to,
        "Subject": subject,
        "Date": format_datetime(date or dt.datetime.now(dt.UTC)),
        "Message-ID": message_id,
    }
    headers |= own
    headers |= shared
    return headers


def sender_headers(config: Config) -> dict[str, str]:
    """From and (if configured) Reply-To."""
    headers = {"From": format_address(config.sender.email, config.sender.name)}
    if config.reply_to:
        headers["Reply-To"] = config.reply_to
    return headers


def new_message_id(sender_email: str) -> str:
    """A fresh ``<...@sender-domain>`` id."""
    # Always pass the domain: without it make_msgid asks DNS for this host's FQDN.
    return make_msgid(domain=sender_email.rpartition("@")[2])


def message_headers(
    config: Config,
    *,
    to: str,
    subject: str,
    unsubscribe_url: str | None = None,
    message_id: str | None = None,
    date: dt.datetime | None = None,
    campaign: str = "",
    topics: Sequence[str] = (),
    mailto_token: str | None = None,
) -> dict[str, str]:
    """Every header of one message, in the order they are written (:func:`copy_headers`).

    Without ``unsubscribe_url`` (transactional mail: confirmations, manage links) there
    are no list headers: those messages are not list mail.
    """
    sender = sender_headers(config)
    own: dict[str, str] = {}
    shared: dict[str, str] = {}
    if unsubscribe_url is not None:
        own = {"List-Unsubscribe": list_unsubscribe(config, unsubscribe_url, mailto_token)}
        shared = shared_list_headers(config, campaign=campaign, topics=topics)
    return copy_headers(
        sender=sender["From"],
        reply_to=sender.get("Reply-To"),
        to=safe_header("To", to),
        subject=safe_header("Subject", subject),
        message_id=message_id or new_message_id(config.sender.email),
        date=date,
        own=own,
        shared=shared,
    )


def message_bytes(headers: Mapping[str, str], *, html: str, text: str) -> bytes:
    """One multipart/alternative message (UTF-8, quoted-printable), LF line endings
    (SMTP turns them into CRLF).

    Written out directly rather than through ``EmailMessage``: the stdlib's pure-Python
    quoted-printable encoder and header registry cost about 5 ms a message, the C
    encoder (``binascii.b2a_qp``) a few hundredths of that, and the outbox and SMTP
    build one message per recipient. It is the one way messages are written: the outbox
    and SMTP hand over these bytes (``send.providers.local_message``), and the tests
    read them back with the stdlib's parser.
    """
    # "=_" cannot occur in quoted-printable text ("=" is always "=3D" there), so a
    # boundary starting with it never collides with the body.
    boundary = f"=_{secrets.token_hex(12)}"
    lines = [header_line(name, value) for name, value in headers.items()]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
    ]
    head = "\n".join(lines).encode()
    parts = b"".join(
        b'--%s\nContent-Type: text/%s; charset="utf-8"\n'
        b"Content-Transfer-Encoding: quoted-printable\n\n%s\n"
        % (boundary.encode(), subtype, _quoted_printable(body))
        for subtype, body in ((b"plain", text), (b"html", html))
    )
    return b"%s\n%s--%s--\n" % (head, parts, boundary.encode())


def _quoted_printable(body: str) -> bytes:
    lines = body.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(lines.encode(), istext=True)
    return encoded if encoded.endswith(b"\n") else encoded + b"\n"
