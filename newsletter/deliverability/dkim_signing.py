"""DKIM signing (RFC 6376) of finished messages, relaxed/relaxed, rsa-sha256.

The SMTP provider signs each personalised message once, just before its first
attempt. Verification is dkimpy's, in the tests and at every receiver's end; the
signing itself is written out here because dkimpy's is pure Python: its RSA step
(a 2048-bit modular exponentiation per message) and its body canonicalisation cost
about 25 ms a message, fifteen times what sending one over SMTP takes. Here the key
is parsed once and the RSA step is OpenSSL's (``cryptography``); the body's relaxed
canonicalisation does its three rewrites only where the body needs them. The tests
check the body hash against dkimpy's and every signature with dkimpy's verifier.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils

from newsletter.deliverability.dkim_keys import SigningKey

# The headers that matter (From, To, Subject, Date, Message-ID, the list headers, the
# MIME headers), in h= order. Only those present are signed, and the ones a message
# must hold once are signed one more time ("oversigned"): a copy of them added on the
# way then breaks the signature instead of being shown.
SIGNED_HEADERS = (
    "from",
    "reply-to",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "feedback-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
)
OVERSIGNED = frozenset(
    {"from", "reply-to", "to", "subject", "date", "message-id", "list-unsubscribe",
     "list-unsubscribe-post"}
)  # fmt: skip

_WSP_RUN = re.compile(rb"[ \t]+")
_SPACES = re.compile(rb"  +")
FOLD_AT = 76


class DkimSigner:
    """Signs messages (bytes with CRLF line ends) for one key; safe across threads."""

    def __init__(self, key: SigningKey, *, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.clock = clock
        self._tags = f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={key.domain}; s={key.selector};"

    def sign(self, message: bytes) -> bytes:
        """``message`` with its ``DKIM-Signature`` header in front."""
        return self.signature(message) + message

    def signature(self, message: bytes) -> bytes:
        """The ``DKIM-Signature:`` header line (folded, ending in CRLF) for ``message``."""
        head, separator, body = message.partition(b"\r\n\r\n")
        if not separator:
            head, body = message.removesuffix(b"\r\n"), b""
        fields = _header_fields(head)
        present = {name for name, _ in fields}
        names = [name for name in SIGNED_HEADERS if name in present]
        names += [name for name in names if name in OVERSIGNED]
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()
        value = (
            f"{self._tags}\r\n t={int(self.clock())}; h={_fold_list(names)};\r\n"
            f" bh={body_hash};\r\n b="
        )
        digest = hashlib.sha256()
        for line in _selected(fields, names):
            digest.update(line)
        # The signature header itself, b= empty, canonicalised, without its CRLF.
        digest.update(relaxed_header(b"dkim-signature", value.encode()).removesuffix(b"\r\n"))
        signature = self.key.private_key.sign(
            digest.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
        )
        encoded = base64.b64encode(signature).decode()
        # b= folded with whitespace, which verifiers ignore there (RFC 6376 3.5).
        folded = "\r\n ".join(encoded[start : start + 72] for start in range(0, len(encoded), 72))
        return f"DKIM-Signature: {value}{folded}\r\n".encode()


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: whitespace runs to one space, none at line ends, no empty lines
    at the end, and one CRLF at the end of a body that is not empty."""
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACES.sub(b" ", body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    if end == 0:
        return b""
    return body[:end] + b"\r\n"


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: the name in lowercase, the value unfolded, its whitespace runs
    made one space and trimmed, ending in CRLF."""
    unfolded = value.replace(b"\r\n", b"").replace(b"\n", b"")
    return name.lower().rstrip() + b":" + _WSP_RUN.sub(b" ", unfolded).strip() + b"\r\n"


def _header_fields(head: bytes) -> list[tuple[str, bytes]]:
    """(lowercase name, canonical line) of each header field, in order."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return [(name.strip().lower().decode("ascii", "replace"), relaxed_header(name, value))
            for name, value in fields]  # fmt: skip


def _selected(fields: list[tuple[str, bytes]], names: Sequence[str]) -> list[bytes]:
    """The canonical lines that h= names, each name taking the next instance from the
    bottom up; a name with no instance left (an oversigned one) contributes nothing."""
    taken: dict[str, int] = {}
    lines = []
    for name in names:
        index = taken.get(name, len(fields))
        while index > 0:
            index -= 1
            if fields[index][0] == name:
                lines.append(fields[index][1])
                break
        taken[name] = index
    return lines


def _fold_list(names: Sequence[str]) -> str:
    """``from:to:...``, folded before a colon where a line would pass :data:`FOLD_AT`."""
    lines = [""]
    for name in names:
        piece = name if not lines[-1] else f":{name}"
        if len(lines[-1]) + len(piece) > FOLD_AT - 8 and lines[-1]:
            lines.append(piece)
        else:
            lines[-1] += piece
    return "\r\n ".join(lines)
