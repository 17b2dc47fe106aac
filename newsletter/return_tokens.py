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
"""

from __future__ import annotations

import hashlib
import hmac
import re
from base64 import b32encode
from dataclasses import dataclass

MAC_LENGTH = 16  # base32 characters: 80 bits
_TOKEN = r"(\d{1,18})-(\d{1,18})-([a-z2-7]{16})"
_BOUNCE_TOKEN = re.compile(r"\+" + _TOKEN + "@", re.IGNORECASE)
_MAILTO_TOKEN = re.compile(r"\bunsubscribe\s+" + _TOKEN + r"\b", re.IGNORECASE)


@dataclass(frozen=True)
class ReturnClaim:
    """Who a returned message is about: checked against its signature, nothing else."""

    subscriber_id: int
    campaign_id: int | None


class ReturnTokens:
    """Signs and reads the VERP envelope sender and the mailto unsubscribe subject."""

    def __init__(self, secret: str) -> None:
        self._keys = {
            purpose: hashlib.sha256(f"newsletter.{purpose}\0{secret}".encode()).digest()
            for purpose in ("bounce", "mailto")
        }

    def token(self, purpose: str, subscriber_id: int, campaign_id: int | None) -> str:
        payload = f"{int(subscriber_id)}-{int(campaign_id or 0)}"
        mac = hmac.new(self._keys[purpose], payload.encode(), hashlib.sha256).digest()
        return f"{payload}-{b32encode(mac[:10]).decode().lower()}"

    def envelope_sender(
        self, bounce_address: str, subscriber_id: int, campaign_id: int | None
    ) -> str:
        """``local+token@domain``: the VERP return path of one message."""
        local, _, domain = bounce_address.rpartition("@")
        return f"{local}+{self.token('bounce', subscriber_id, campaign_id)}@{domain}"

    def mailto_subject(self, subscriber_id: int, campaign_id: int | None) -> str:
        return f"unsubscribe {self.token('mailto', subscriber_id, campaign_id)}"

    def read_bounce(self, text: str) -> ReturnClaim | None:
        """The first validly signed VERP address in ``text`` (headers of a bounce)."""
        return self._first_valid("bounce", _BOUNCE_TOKEN, text)

    def read_mailto(self, text: str) -> ReturnClaim | None:
        """The validly signed ``unsubscribe <token>`` in ``text`` (a subject), if any."""
        return self._first_valid("mailto", _MAILTO_TOKEN, text)

    def _first_valid(self, purpose: str, pattern: re.Pattern[str], text: str) -> ReturnClaim | None:
        for found in pattern.finditer(text):
            subscriber, campaign, mac = found.groups()
            expected = self.token(purpose, int(subscriber), int(campaign))
            if hmac.compare_digest(expected.rpartition("-")[2], mac.lower()):
                campaign_id = int(campaign)
                return ReturnClaim(int(subscriber), campaign_id or None)
        return None
