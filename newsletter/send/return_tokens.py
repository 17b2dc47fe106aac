"""Signed tokens for mail that comes back: bounces, complaints and mailto unsubscribes.

Two purposes, each with its own key derived from ``NEWSLETTER_SECRET_KEY``:

- ``bounce``: the VERP envelope sender of one message,
  ``bounces+<subscriber>-<campaign>-<mac>@example.org``. A bounce is sent to it, so
  the address it arrives at names the one subscriber and campaign it is about,
  without trusting anything the bounce itself says.
- ``mailto``: the ``?subject=unsubscribe <subscriber>-<campaign>-<mac>`` of the
  ``List-Unsubscribe`` mailto, so a message to that address unsubscribes exactly the
  person the copy was sent to; a forged one without a valid token changes nothing.

Not itsdangerous tokens like :mod:`newsletter.tokens`: an address's local part is at
most 64 characters and mail systems may change its case on the way, so the MAC is 80
bits of HMAC-SHA256 in lowercase base32 and is compared case-insensitively.

Like every link (issue 10), a token acts only on the person it was issued to: the MAC
is also over the subscriber's ``link_key``, which the token does not carry (it would
not fit), so a reader checks it against the key the subscriber has *now*
(:data:`LinkKeyOf`). An erased subscriber has no row and no key, so their returned
mail reaches nobody, even on an id that came back. Rows marked ``legacy_links`` need
no exception here: no return token was issued before link keys existed (both came in
the same release), so every return token was signed with a key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from newsletter.render.mail import UNSUBSCRIBE_SUBJECT

MAILTO_SUBJECT_PREFIX = f"{UNSUBSCRIBE_SUBJECT} "  # then the token (render/mail.py)
# <subscriber>-<campaign>-<MAC>, the MAC 16 base32 characters (80 bits).
_TOKEN = r"(\d{1,18})-(\d{1,18})-([a-z2-7]{16})"
_BOUNCE_TOKEN = re.compile(r"\+" + _TOKEN + "@", re.IGNORECASE)
_MAILTO_TOKEN = re.compile(r"\bunsubscribe\s+" + _TOKEN + r"\b", re.IGNORECASE)
# A token in a message's raw bytes: after the "+" of a VERP address, the space of
# "unsubscribe <token>", or the "_" of that subject quoted-printable encoded. Only to
# know whose link keys to fetch at once; a token framed otherwise (a base64-encoded
# subject) costs one query more. Starting with one of a few characters, not a digit,
# makes it seven times faster on a bounce.
_ANY_TOKEN = re.compile(rb"[+_\s]([0-9]{1,18})-[0-9]{1,18}-[a-zA-Z2-7]{16}")

LinkKeyOf = Callable[[int], "str | None"]
"""A subscriber's current ``link_key`` by id; None when there is no such subscriber."""


@dataclass(frozen=True)
class ReturnClaim:
    """Who a returned message is about: checked against its signature (and so against
    the subscriber's current link key), nothing else."""

    subscriber_id: int
    campaign_id: int | None


class ReturnTokens:
    """Signs and reads the VERP envelope sender and the mailto unsubscribe subject."""

    def __init__(self, secret: str) -> None:
        # HMAC-SHA256 keyed once per purpose and copied per token (a token per message):
        # the copy skips hashing the key's pads again, two thirds of ``hmac.new``.
        self._keyed = {
            purpose: hmac.new(
                hashlib.sha256(f"newsletter.{purpose}\0{secret}".encode()).digest(),
                digestmod=hashlib.sha256,
            )
            for purpose in ("bounce", "mailto")
        }

    def token(
        self, purpose: str, subscriber_id: int, link_key: str, campaign_id: int | None
    ) -> str:
        payload = f"{int(subscriber_id)}-{int(campaign_id or 0)}"
        return f"{payload}-{self._mac(purpose, payload, link_key)}"

    def _mac(self, purpose: str, payload: str, link_key: str) -> str:
        signed = f"{payload}\0{link_key}".encode()  # NUL: the payload ends where the key begins
        mac = self._keyed[purpose].copy()
        mac.update(signed)
        return _base32_80(mac.digest())

    def envelope_sender(
        self, bounce_address: str, subscriber_id: int, link_key: str, campaign_id: int | None
    ) -> str:
        """``local+token@domain``: the VERP return path of one message."""
        local, _, domain = bounce_address.rpartition("@")
        token = self.token("bounce", subscriber_id, link_key, campaign_id)
        return f"{local}+{token}@{domain}"

    def mailto_subject(self, subscriber_id: int, link_key: str, campaign_id: int | None) -> str:
        token = self.token("mailto", subscriber_id, link_key, campaign_id)
        return f"{MAILTO_SUBJECT_PREFIX}{token}"

    def read_bounce(self, text: str, link_key_of: LinkKeyOf) -> ReturnClaim | None:
        """The first validly signed VERP address in ``text`` (headers of a bounce)."""
        return self._first_valid("bounce", _BOUNCE_TOKEN, text, link_key_of)

    def read_mailto(self, text: str, link_key_of: LinkKeyOf) -> ReturnClaim | None:
        """The validly signed ``unsubscribe <token>`` in ``text`` (a subject), if any."""
        return self._first_valid("mailto", _MAILTO_TOKEN, text, link_key_of)

    def _first_valid(
        self, purpose: str, pattern: re.Pattern[str], text: str, link_key_of: LinkKeyOf
    ) -> ReturnClaim | None:
        for found in pattern.finditer(text):
            subscriber, campaign, mac = found.groups()
            link_key = link_key_of(int(subscriber))
            if link_key is None:  # erased (or never was): not ours, like a forged token
                continue
            expected = self._mac(purpose, f"{int(subscriber)}-{int(campaign)}", link_key)
            if hmac.compare_digest(expected, mac.lower()):
                return ReturnClaim(int(subscriber), int(campaign) or None)
        return None


# Every 10-bit group as its two lowercase base32 characters (RFC 4648 alphabet).
_BASE32_PAIRS = [
    first + second
    for first in "abcdefghijklmnopqrstuvwxyz234567"
    for second in "abcdefghijklmnopqrstuvwxyz234567"
]


def _base32_80(mac: bytes) -> str:
    """``b32encode(mac[:10]).decode().lower()`` in half its time: 80 bits are exactly
    eight 10-bit groups, so there is no padding and no partial group."""
    n = int.from_bytes(mac[:10], "big")
    pairs = _BASE32_PAIRS
    return (
        pairs[n >> 70]
        + pairs[(n >> 60) & 1023]
        + pairs[(n >> 50) & 1023]
        + pairs[(n >> 40) & 1023]
        + pairs[(n >> 30) & 1023]
        + pairs[(n >> 20) & 1023]
        + pairs[(n >> 10) & 1023]
        + pairs[n & 1023]
    )


def named_subscribers(messages: Iterable[bytes]) -> set[int]:
    """Every subscriber id that anything shaped like a token in ``messages`` names:
    whose link keys a reader will ask for, to look them up at once."""
    return {int(found[1]) for raw in messages for found in _ANY_TOKEN.finditer(raw)}
