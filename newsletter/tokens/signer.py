"""The four kinds of subscriber token (unsubscribe, preferences, confirm, manage): made
for the links in mail and read back by the web app."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from newsletter.config import library_paths
from newsletter.errors import ExpiredTokenError, TokenError
from newsletter.tokens.fast_dumps import FastDumps


@dataclass(frozen=True)
class LinkClaim:
    """Who a link was issued to: the subscriber's id and link key (None: a link issued
    before link keys, which only the rows that existed then accept)."""

    subscriber_id: int
    link_key: str | None


@dataclass(frozen=True)
class UnsubscribeClaim:
    subscriber_id: int
    campaign_id: int | None
    link_key: str | None = None


# Link keys are made by newsletter.store.schema.new_link_key (URL-safe base64); the
# check keeps the hand-written JSON of the fast path valid whatever the database holds.
_LINK_KEY = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _checked_key(link_key: str) -> str:
    if not _LINK_KEY.fullmatch(link_key):
        raise TokenError(f"a subscriber's link key must be URL-safe text, not {link_key!r}")
    return link_key


def _signable_key(link_key: str) -> str:
    """The sending hot path's check: cheaper than the pattern, and enough to keep the
    hand-written JSON valid (the store only ever makes URL-safe keys)."""
    if not (link_key.isascii() and link_key.isprintable()) or '"' in link_key or "\\" in link_key:
        raise TokenError(f"a subscriber's link key must be URL-safe text, not {link_key!r}")
    return link_key


class Signer:
    """Signs and reads the four kinds of token.

    Every token names the subscriber by id *and* link key (a random value per
    subscriber, deleted when the person is erased): a link can only act on the person
    it was issued to. Tokens signed before link keys carry only the id; the readers
    accept them with ``link_key=None``, and the store honours those only for the rows
    that existed then (see :mod:`newsletter.store.link_keys`).
    """

    def __init__(self, secret: str, *, fast: bool | None = None) -> None:
        """``fast``: sign the per-message tokens through :class:`FastDumps`; by default
        unless ``NEWSLETTER_LIBRARY_PATHS`` is set (see :func:`config.library_paths`)."""
        fast = not library_paths() if fast is None else fast
        self._forever = {
            purpose: URLSafeSerializer(secret, salt=f"newsletter.{purpose}")
            for purpose in ("unsubscribe", "preferences")
        }
        self._timed = {
            purpose: URLSafeTimedSerializer(secret, salt=f"newsletter.{purpose}")
            for purpose in ("confirm", "manage")
        }
        self._fast = {
            purpose: FastDumps(serializer, fast=fast)
            for purpose, serializer in self._forever.items()
        }

    # Never-expiring tokens, carried in every message.

    def unsubscribe_token(self, subscriber_id: int, campaign_id: int | None, link_key: str) -> str:
        subscriber_id = int(subscriber_id)
        campaign_id = None if campaign_id is None else int(campaign_id)
        link_key = _signable_key(link_key)
        campaign = "null" if campaign_id is None else campaign_id
        json_text = f'[{subscriber_id},{campaign},"{link_key}"]'
        return self._fast["unsubscribe"].dumps([subscriber_id, campaign_id, link_key], json_text)

    def message_tokens(
        self, subscriber_id: int, campaign_id: int | None, link_key: str
    ) -> tuple[str, str]:
        """:meth:`unsubscribe_token` and :meth:`preferences_token` of one message, the same
        tokens: the sender signs both for every recipient, so the id and key are checked
        and formatted once."""
        subscriber_id = int(subscriber_id)
        campaign = "null" if campaign_id is None else int(campaign_id)
        link_key = _signable_key(link_key)
        unsubscribe = self._fast["unsubscribe"].dumps(
            [subscriber_id, None if campaign_id is None else campaign, link_key],
            f'[{subscriber_id},{campaign},"{link_key}"]',
        )
        preferences = self._fast["preferences"].dumps(
            [subscriber_id, link_key], f'[{subscriber_id},"{link_key}"]'
        )
        return unsubscribe, preferences

    def read_unsubscribe_token(self, token: str) -> UnsubscribeClaim:
        payload = self._load(self._forever["unsubscribe"], token)
        try:
            if len(payload) == 2:  # before link keys
                subscriber_id, campaign_id = payload
                link_key = None
            else:
                subscriber_id, campaign_id, link_key = payload
                link_key = _checked_key(link_key)
            return UnsubscribeClaim(
                int(subscriber_id), None if campaign_id is None else int(campaign_id), link_key
            )
        except (ValueError, TypeError):
            raise TokenError("this link is not valid") from None

    def preferences_token(self, subscriber_id: int, link_key: str) -> str:
        subscriber_id = int(subscriber_id)
        link_key = _signable_key(link_key)
        return self._fast["preferences"].dumps(
            [subscriber_id, link_key], f'[{subscriber_id},"{link_key}"]'
        )

    def read_preferences_token(self, token: str) -> LinkClaim:
        return _link_claim(self._load(self._forever["preferences"], token))

    # Expiring tokens, sent on request (double opt-in, "email me my link").

    def confirm_token(self, subscriber_id: int, link_key: str) -> str:
        return str(self._timed["confirm"].dumps([int(subscriber_id), _checked_key(link_key)]))

    def read_confirm_token(self, token: str, *, max_age_seconds: int) -> LinkClaim:
        return _link_claim(self._load(self._timed["confirm"], token, max_age=max_age_seconds))

    def manage_token(self, subscriber_id: int, link_key: str) -> str:
        return str(self._timed["manage"].dumps([int(subscriber_id), _checked_key(link_key)]))

    def read_manage_token(self, token: str, *, max_age_seconds: int) -> LinkClaim:
        return _link_claim(self._load(self._timed["manage"], token, max_age=max_age_seconds))

    def read_preferences_or_manage_token(self, token: str, *, max_age_seconds: int) -> LinkClaim:
        """The subscriber behind a ``/p/`` link, which carries either kind of token: the
        never-expiring one from mail footers or the expiring one mailed on request."""
        try:
            return self.read_preferences_token(token)
        except TokenError:
            return self.read_manage_token(token, max_age_seconds=max_age_seconds)

    @staticmethod
    def _load(
        serializer: URLSafeSerializer | URLSafeTimedSerializer,
        token: str,
        *,
        max_age: int | None = None,
    ) -> Any:
        try:
            if isinstance(serializer, URLSafeTimedSerializer):
                return serializer.loads(token, max_age=max_age)
            return serializer.loads(token)
        except SignatureExpired:
            raise ExpiredTokenError("this link has expired; ask for a new one") from None
        except (BadData, ValueError, TypeError):
            raise TokenError("this link is not valid") from None


def _link_claim(payload: Any) -> LinkClaim:
    """``[id, link_key]``, or a bare id from before link keys."""
    try:
        if isinstance(payload, list):
            subscriber_id, link_key = payload
            return LinkClaim(int(subscriber_id), _checked_key(link_key))
        if isinstance(payload, bool) or not isinstance(payload, int):
            raise TypeError(payload)
        return LinkClaim(payload, None)
    except (ValueError, TypeError):
        raise TokenError("this link is not valid") from None
