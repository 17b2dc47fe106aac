"""Headers and RFC 5322 messages: what every provider and the preview agree on.

:func:`list_headers` gives the list headers of one recipient's copy (RFC 2369
``List-Unsubscribe`` with the same ``/u/<token>`` URL as the body, RFC 8058
``List-Unsubscribe-Post``, ``List-Id``); :func:`message_headers` adds From, Reply-To,
To, Subject, Date and Message-ID; :func:`compose` builds the multipart/alternative
message (text first, HTML last: clients show the last part they can display).

Every header value is refused if it holds a line break: a subject from front matter
or a name from a signup form must never be able to add a ``Bcc:``.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email
import secrets
from collections.abc import Mapping
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.safe_text import first_control, visible

# The default policy folds headers at 78 columns and, to do so, RFC 2047-encodes any
# word longer than that: a List-Unsubscribe URL would become "=?utf-8?q?=3Chttps..."
# and mailbox providers would show no unsubscribe button. RFC 5322's hard limit is 998.
MAX_LINE = 998
POLICY = policy.default.clone(max_line_length=MAX_LINE)
# Headers people read (Subject, names in From/To) are folded like any mail program
# does. RFC 2047 allows an encoded word 75 characters at most: with lines of 76, an
# encoded word after the folding space is at most 75 (at 998, one non-ASCII subject
# became a single encoded word of 116 characters, which strict parsers reject).
FOLDED_LINE = 76
FOLDING_POLICY = policy.default.clone(max_line_length=FOLDED_LINE)
# Their values are URLs and ids that must stay on one line, unencoded (see above).
UNFOLDED_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Message-ID"})

ONE_CLICK = "List-Unsubscribe=One-Click"


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
    return value


def format_address(email: str, name: str = "") -> str:
    """``"Display Name" <user@example.org>``, quoted where the name needs it."""
    safe_header("address", name)
    safe_header("address", email)
    if not name:
        return email
    username, _, domain = email.rpartition("@")
    return str(Address(display_name=name, username=username, domain=domain))


def list_unsubscribe(config: Config, unsubscribe_url: str) -> str:
    """RFC 2369 ``List-Unsubscribe``: the HTTPS URL first (RFC 8058), then the mailto."""
    targets = [f"<{safe_header('List-Unsubscribe', unsubscribe_url)}>"]
    if config.unsubscribe_mailto:
        targets.append(f"<mailto:{config.unsubscribe_mailto}?subject=unsubscribe>")
    return ", ".join(targets)


def shared_list_headers(config: Config) -> dict[str, str]:
    """The list headers that are the same in every copy."""
    return {
        "List-Unsubscribe-Post": ONE_CLICK,
        "List-Id": safe_header("List-Id", config.list_id_header),
    }


def list_headers(config: Config, unsubscribe_url: str) -> dict[str, str]:
    """The list headers of one recipient's copy; ``unsubscribe_url`` is their ``/u/<token>``
    link, the same as in the body."""
    return {
        "List-Unsubscribe": list_unsubscribe(config, unsubscribe_url),
        **shared_list_headers(config),
    }


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
) -> dict[str, str]:
    """Every header of one message, in the order they are written.

    Without ``unsubscribe_url`` (transactional mail: confirmations, manage links) there
    are no list headers: those messages are not list mail.
    """
    headers = {
        **sender_headers(config),
        "To": safe_header("To", to),
        "Subject": safe_header("Subject", subject),
        "Date": format_datetime(date or dt.datetime.now(dt.UTC)),
        "Message-ID": message_id or new_message_id(config.sender.email),
    }
    if unsubscribe_url is not None:
        headers.update(list_headers(config, unsubscribe_url))
    return headers


def message_bytes(headers: Mapping[str, str], *, html: str, text: str) -> bytes:
    """One multipart/alternative message (UTF-8, quoted-printable), LF line endings
    (SMTP turns them into CRLF).

    Written out directly rather than through ``EmailMessage``: the stdlib's pure-Python
    quoted-printable encoder and header registry cost about 5 ms a message, the C
    encoder (``binascii.b2a_qp``) a few hundredths of that, and the outbox and SMTP
    build one message per recipient. :func:`compose` parses the result back for
    anyone who wants the object, so there is one way messages are written.
    """
    # "=_" cannot occur in quoted-printable text ("=" is always "=3D" there), so a
    # boundary starting with it never collides with the body.
    boundary = f"=_{secrets.token_hex(12)}"
    lines = [_header_line(name, value) for name, value in headers.items()]
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


def compose(headers: Mapping[str, str], *, html: str, text: str) -> EmailMessage:
    """:func:`message_bytes`, as an ``EmailMessage`` (for previews and tests)."""
    parsed = email.message_from_bytes(message_bytes(headers, html=html, text=text), policy=POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _quoted_printable(body: str) -> bytes:
    lines = body.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(lines.encode(), istext=True)
    return encoded if encoded.endswith(b"\n") else encoded + b"\n"


def _header_line(name: str, value: str) -> str:
    safe_header(name, value)
    line = f"{name}: {value}"
    if value.isascii() and (len(line) <= 78 or name in UNFOLDED_HEADERS) and len(line) <= MAX_LINE:
        return line
    # Non-ASCII (RFC 2047 encoded words) or long: the stdlib folds it, with encoded words
    # of at most 75 characters.
    fold_policy = POLICY if value.isascii() and name in UNFOLDED_HEADERS else FOLDING_POLICY
    return fold_policy.header_factory(name, value).fold(policy=fold_policy).rstrip("\n")
