"""Header values on the wire: refused if they could inject a header or carry a control
character (:func:`safe_header`), addresses in their readable form
(:func:`format_address`), and each ``Name: value`` as ASCII lines of at most 78
characters that any RFC 2047 decoder reads back exactly (:func:`header_line`)."""

from __future__ import annotations

import functools
import re
from email.header import Header

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
