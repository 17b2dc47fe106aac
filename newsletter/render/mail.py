"""Headers and RFC 5322 messages: what every provider and the preview agree on.

The one home of what headers a copy of an issue carries. :func:`copy_headers` puts a
copy's headers in their order: From, Reply-To, To, Subject, Date, Message-ID, then its
own (``List-Unsubscribe`` with the same ``/u/<token>`` URL as the body and, with
``unsubscribe_mailto``, the mailto whose subject carries the copy's signed token), then
those shared by every copy of the campaign (:func:`shared_list_headers`: RFC 8058
``List-Unsubscribe-Post``, ``List-Id``, Gmail's ``Feedback-ID``). Every path builds
them here: a campaign's copies (``send.campaign.RecipientBuilder`` and
``send.providers.local_message``, or a provider's API), a test send, and the preview's
Headers view, which shows a reader's copy as it is sent. :func:`message_headers` is the
same for one message given its parts. :func:`header_line` writes them.

Every header value is refused if it holds a line break: a subject from front matter
or a name from a signup form must never be able to add a ``Bcc:``.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import re
import secrets
from collections.abc import Mapping, Sequence
from email.header import Header
from email.utils import format_datetime, make_msgid

from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.safe_text import first_control, visible

# RFC 5322 2.1.1: a line SHOULD be at most 78 characters and MUST be at most 998.
FOLD_AT = 78
MAX_LINE = 998
# RFC 2047 allows an encoded word 75 characters at most: with lines of 76, an encoded
# word after the folding space is at most 75.
ENCODED_LINE = 76
# Their values are URLs and ids that must stay on one line, unencoded: folded by the
# policy at 78, a List-Unsubscribe URL became "=?utf-8?q?=3Chttps..." and mailbox
# providers showed no unsubscribe button.
UNFOLDED_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"})
# Headers whose value is a display name and an address in angle brackets (List-Id:
# RFC 2919, a phrase and the list's id): the name is encoded, the address never.
ADDRESS_HEADERS = frozenset({"From", "To", "Reply-To", "Sender", "List-Id"})
# A display name that needs no quotes: words without RFC 5322 specials, one space apart.
_PLAIN_NAME = re.compile(r'[^\s"(),.:;<>@\[\]\\]+(?: [^\s"(),.:;<>@\[\]\\]+)*')
# Where an ASCII line may fold: before the first of a run of spaces or tabs, so that no
# line ends in whitespace (relays trim it) and unfolding gives the value back exactly.
_FOLD_POINT = re.compile(r"(?<=[^ \t])[ \t]")
_QUOTED_PAIR = re.compile(r"\\(.)")

ONE_CLICK = "List-Unsubscribe=One-Click"
# The subject of the List-Unsubscribe mailto: "unsubscribe <the copy's signed token>".
UNSUBSCRIBE_SUBJECT = "unsubscribe"
# Feedback-ID: each field at most this long, of these characters only.
FEEDBACK_FIELD_MAX = 40
_NOT_IN_FEEDBACK_ID = re.compile(r"[^a-z0-9._-]+")
EMPTY: Mapping[str, str] = {}


def safe_header(name: str, value: str) -> str:
    """``value`` if it cannot inject headers nor carry control characters to the
    reader's mail client; a :class:`SendError` otherwise."""
    if "\r" in value or "\n" in value:
        raise SendError(
            f"the {name} header would contain a line break ({value!r}); "
            "headers must be a single line: remove the line break at its source"
        )
    control = first_control(value)
    if control is not None:
        raise SendError(
            f"the {name} header would contain the control character "
            f"U+{ord(control):04X} ({visible(value)}); remove it at its source"
        )
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise SendError(
                f"the {name} header would contain a lone surrogate ({value!r}), "
                "which is not text: fix it at its source"
            ) from None
    return value


def format_address(email: str, name: str = "") -> str:
    """``Display Name <user@example.org>``, the name in quotes where RFC 5322 needs them
    (a comma, a dot, a quote). This is the readable form; how it goes on the wire
    (encoded words for a name that is not ASCII) is :func:`header_line`'s.

    Whitespace in the name is collapsed to single spaces, as in every stored name
    (:func:`~newsletter.safe_text.without_controls`): mail clients collapse it anyway.
    """
    safe_header("address", name)
    safe_header("address", email)
    name = " ".join(name.split())
    if not name:
        return email
    if not _PLAIN_NAME.fullmatch(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{email}>"


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


def header_line(name: str, value: str) -> str:
    """``Name: value`` as it goes on the wire: ASCII, lines of at most 78 characters
    (joined by ``\\n``), and read back by any RFC 2047 decoder as exactly ``value``.

    ``value`` is the readable form (a subject; ``Name <address>`` from
    :func:`format_address`). Plain ASCII stays as it is, folded at its spaces where it is
    long: encoding it would cost spam score (rspamd's SUBJ_EXCESS_QP, FROM_EXCESS_BASE64).
    Anything else is written as encoded words by the standard library's
    :class:`email.header.Header`, with every space inside the words. The policy's own
    folder (``policy.header_factory(...).fold()``) is not used: it moves spaces to the
    edges of encoded words, where decoders drop them, so 5% of non-ASCII subjects lost
    or doubled a space (tests/send/test_header_roundtrip.py).
    """
    safe_header(name, value)
    line = f"{name}: {value}"
    if value.isascii() and "=?" not in value:
        if name in UNFOLDED_HEADERS and len(line) <= MAX_LINE:
            return line
        if len(line) <= FOLD_AT and value == value.strip(" \t"):
            return line
    return _encoded_line(name, value)


def header_value(name: str, value: str) -> str:
    """:func:`header_line`'s value on one line (for an API that takes headers as data,
    such as SendGrid's ``headers``, which must be encoded already)."""
    return header_line(name, value).partition(": ")[2].replace("\n", "")


@functools.lru_cache(maxsize=1024)  # the subject, From and List-Id repeat in every copy
def _encoded_line(name: str, value: str) -> str:
    if name in ADDRESS_HEADERS:
        return _address_line(name, value)
    if value.isascii() and "=?" not in value and value == value.strip(" \t"):
        return _folded(f"{name}: {value}", len(name) + 2)
    return f"{name}: {_encoded_words(name, value)}"


def _address_line(name: str, value: str) -> str:
    """``Name: phrase <address>``: the display name quoted or encoded, the address as is
    (an address cannot be RFC 2047-encoded)."""
    phrase, address = _split_address(value)
    if not phrase:
        return f"{name}: {value}"
    if phrase.isascii() and "=?" not in phrase:
        return _folded(f"{name}: {format_address(address, phrase)}", len(name) + 2)
    # One encoded word where the name fits in one (on a line of its own if need be):
    # Python's address parser, unlike RFC 2047 section 6.2, keeps the space between two
    # encoded words of a display name, so a name split in two would read back with a
    # space added. A longer name is split as RFC 2047 says (spaces inside the words).
    word = Header(phrase, "utf-8", maxlinelen=0).encode()
    if len(word) <= ENCODED_LINE - 1:
        separator = " " if len(name) + 2 + len(word) <= FOLD_AT else "\n "
        line = f"{name}:{separator}{word}"
    else:
        line = f"{name}: {_encoded_words(name, phrase)}"
    tail = f" <{address}>"
    return line + ("\n" if len(line.rpartition("\n")[2]) + len(tail) > FOLD_AT else "") + tail


def _split_address(value: str) -> tuple[str, str]:
    """(display name, address) of ``Name <address>`` or ``"Quoted, Name" <address>``."""
    if not value.endswith(">"):
        return "", value
    phrase, separator, address = value[:-1].rpartition(" <")
    if not separator:
        return "", value
    if len(phrase) >= 2 and phrase[0] == phrase[-1] == '"':
        phrase = _QUOTED_PAIR.sub(r"\1", phrase[1:-1])
    return phrase, address


def _encoded_words(name: str, text: str) -> str:
    """``text`` as UTF-8 encoded words of at most 75 characters (the shorter of Q and B),
    folded between words; decoders drop the folding whitespace between two words."""
    header = Header(text, "utf-8", maxlinelen=ENCODED_LINE, header_name=name)
    return header.encode(linesep="\n")


def _folded(line: str, start: int) -> str:
    """An ASCII ``line`` folded before whitespace so that no line passes 78 characters
    where it can (unfolding removes the line breaks and gives it back exactly); a run
    without whitespace stays whole (RFC 5322 allows 998). ``start``: where the value
    begins."""
    lines = []
    floor = start
    while len(line) > FOLD_AT:
        points = [point.start() for point in _FOLD_POINT.finditer(line, floor + 1)]
        if not points:
            break
        fitting = [cut for cut in points if cut <= FOLD_AT]
        cut = fitting[-1] if fitting else points[0]
        lines.append(line[:cut])
        line = line[cut:]
        floor = len(line) - len(line.lstrip(" \t"))
    lines.append(line)
    return "\n".join(lines)
