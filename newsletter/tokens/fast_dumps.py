"""Signing a short token at sending speed: what ``URLSafeSerializer.dumps`` does, with
the HMAC keyed once."""

from __future__ import annotations

from binascii import b2a_base64

from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import want_bytes


class FastDumps:
    """``URLSafeSerializer.dumps`` of a short JSON text, ten times faster.

    Every message carries two never-expiring tokens, so at 20,000 recipients a second
    itsdangerous' per-call overhead (a fresh JSON encoder, a key derivation and a zlib
    attempt per token) would be most of the sending time. Here HMAC-SHA1's inner and
    outer hash states are keyed once and copied per token (RFC 2104, what ``hmac``
    does). The payload is never compressed: itsdangerous compresses one only when that
    makes it shorter, which up to 36 bytes takes a long repeated run (an id such as
    1111111111) and saves a few bytes; its ``loads`` reads both forms, so such a token
    is as valid, just not byte-identical (a test checks both on thousands of ids).
    Checking for repeats per token would cost more than signing it. Longer payloads
    are handed to itsdangerous itself, and so is every payload with ``fast=False``
    (``NEWSLETTER_LIBRARY_PATHS``).
    """

    MAX_PLAIN_LENGTH = 36

    def __init__(self, serializer: URLSafeSerializer, *, fast: bool = True) -> None:
        self.serializer = serializer
        self.max_plain_length = self.MAX_PLAIN_LENGTH if fast else -1
        signer = serializer.make_signer()
        self.separator = want_bytes(signer.sep)
        digest = signer.digest_method
        key = signer.derive_key()
        block = digest().block_size
        key = (digest(key).digest() if len(key) > block else key).ljust(block, b"\0")
        self.inner = digest(bytes(byte ^ 0x36 for byte in key))
        self.outer = digest(bytes(byte ^ 0x5C for byte in key))

    def dumps(self, value: object, json_text: str) -> str:
        raw = json_text.encode()
        if len(raw) > self.max_plain_length:
            return str(self.serializer.dumps(value))
        # itsdangerous' base64_encode (URL-safe alphabet, no padding), written out here
        # twice: two function calls per token were a tenth of its cost.
        payload = b2a_base64(raw, newline=False).translate(URL_SAFE).rstrip(b"=")
        inner = self.inner.copy()
        inner.update(payload)
        outer = self.outer.copy()
        outer.update(inner.digest())
        signature = b2a_base64(outer.digest(), newline=False).translate(URL_SAFE).rstrip(b"=")
        return (payload + self.separator + signature).decode()


URL_SAFE = bytes.maketrans(b"+/", b"-_")
