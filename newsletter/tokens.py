"""Signed tokens for the links in every message and on the subscriber web app.

One module, used by the sender (to build links) and the web app (to read them), so
both always agree. Tokens are signed with ``NEWSLETTER_SECRET_KEY`` (itsdangerous,
HMAC-SHA1 over a purpose-specific salt, so an unsubscribe token is no confirm token).

- unsubscribe and preferences tokens never expire: CAN-SPAM wants the opt-out in a
  message to keep working for 30 days and more, and old mail gets read.
- confirm and manage tokens expire (``web.link_max_age_days``, 7 days by default).
"""

from __future__ import annotations

import re
from binascii import b2a_base64
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

from newsletter.config import SECRET_KEY_ENV, Config, env_secret, library_paths
from newsletter.errors import ExpiredTokenError, TokenError
from newsletter.models import Personalization

# A fixed key for local builds, previews, the outbox and --test sends only; sending
# for real and serving the web app refuse to run with it (see require_secret).
DEVELOPMENT_SECRET = "development-only-not-secret"


MIN_SECRET_LENGTH = 32
_MAKE_ONE = (
    f'make one with: python -c "import secrets; print(secrets.token_urlsafe({MIN_SECRET_LENGTH}))"'
    " and keep it the same across runs"
)


def require_secret() -> str:
    """The link-signing key for real mail and the web app: set, not the public
    development key, and long enough that it cannot be guessed."""
    secret = env_secret(SECRET_KEY_ENV)
    if not secret:
        raise TokenError(
            f"{SECRET_KEY_ENV} is not set: links in mail must be signed with a secret key; "
            + _MAKE_ONE
        )
    if secret == DEVELOPMENT_SECRET:
        raise TokenError(
            f"{SECRET_KEY_ENV} is the public development key, with which anyone can sign "
            "links to unsubscribe or read your subscribers; " + _MAKE_ONE
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise TokenError(
            f"{SECRET_KEY_ENV} is too short ({len(secret)} characters, at least "
            f"{MIN_SECRET_LENGTH} are needed); " + _MAKE_ONE
        )
    return secret


def secret_or_development() -> str:
    return env_secret(SECRET_KEY_ENV) or DEVELOPMENT_SECRET


class _FastDumps:
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
        payload = b2a_base64(raw, newline=False).translate(_URL_SAFE).rstrip(b"=")
        inner = self.inner.copy()
        inner.update(payload)
        outer = self.outer.copy()
        outer.update(inner.digest())
        signature = b2a_base64(outer.digest(), newline=False).translate(_URL_SAFE).rstrip(b"=")
        return (payload + self.separator + signature).decode()


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


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
        """``fast``: sign the per-message tokens through :class:`_FastDumps`; by default
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
            purpose: _FastDumps(serializer, fast=fast)
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


class Links:
    """The URLs in a message, built the one way the web app's routes expect."""

    def __init__(self, config: Config, signer: Signer) -> None:
        self.site_url = config.site_url
        self.signer = signer

    def unsubscribe(self, subscriber_id: int, link_key: str, campaign_id: int | None) -> str:
        token = self.signer.unsubscribe_token(subscriber_id, campaign_id, link_key)
        return f"{self.site_url}/u/{token}"

    def preferences(self, subscriber_id: int, link_key: str) -> str:
        return f"{self.site_url}/p/{self.signer.preferences_token(subscriber_id, link_key)}"

    def message_links(
        self, subscriber_id: int, link_key: str, campaign_id: int | None
    ) -> tuple[str, str]:
        """``(unsubscribe, preferences)``: the two links of one message, signed at once."""
        unsubscribe, preferences = self.signer.message_tokens(subscriber_id, campaign_id, link_key)
        return f"{self.site_url}/u/{unsubscribe}", f"{self.site_url}/p/{preferences}"

    def confirm(self, subscriber_id: int, link_key: str) -> str:
        return f"{self.site_url}/confirm/{self.signer.confirm_token(subscriber_id, link_key)}"

    def manage(self, subscriber_id: int, link_key: str) -> str:
        # Same route as preferences: the web app accepts either kind of token there.
        return f"{self.site_url}/p/{self.signer.manage_token(subscriber_id, link_key)}"

    def view(self, slug: str) -> str:
        # The folder of the web version, as a static host serves it too.
        return f"{self.site_url}/archive/{slug}/"


SAMPLE_EMAIL = "reader@example.org"
SAMPLE_NAME = "Sam Reader"
SAMPLE_LINK_KEY = "sample"


def sample_personalization(config: Config, slug: str) -> Personalization:
    """A made-up recipient with real-looking links, for builds, checks and previews."""
    links = Links(config, Signer(secret_or_development()))
    return Personalization(
        email=SAMPLE_EMAIL,
        name=SAMPLE_NAME,
        unsubscribe_url=links.unsubscribe(0, SAMPLE_LINK_KEY, None),
        preferences_url=links.preferences(0, SAMPLE_LINK_KEY),
        view_url=links.view(slug),
    )


# -- first-party click and open tracking (issue 15) ------------------------------------
# Separate from Signer: own salts, so a click token is never accepted as another kind.


@dataclass(frozen=True)
class ClickClaim:
    campaign_id: int
    link: int  # the link's number in the campaign (campaign_links); -1: the open pixel
    subscriber_id: int | None  # from the reader's key, with tracking.per_subscriber


class TrackingSigner:
    """``/c/<token>`` (a link of a campaign), ``/c/<token>/<reader key>`` (the same,
    with ``tracking.per_subscriber``) and ``/o/<token>`` (its open pixel).

    The token names the campaign and the link's number, never the URL: the redirect
    target is looked up in the store, so a token cannot send anyone elsewhere.
    """

    OPEN = -1

    def __init__(self, secret: str, *, fast: bool | None = None) -> None:
        self._click = URLSafeSerializer(secret, salt="newsletter.click")
        self._reader = URLSafeSerializer(secret, salt="newsletter.click-reader")
        fast = not library_paths() if fast is None else fast
        self._fast_reader = _FastDumps(self._reader, fast=fast)

    def reader_key(self, campaign_id: int, subscriber_id: int) -> str:
        """The reader's part of a tracked link (``tracking.per_subscriber``): names the
        campaign and subscriber, so a link forwarded to another campaign's reader is no
        use. Built for every recipient, so through the fast path."""
        campaign_id, subscriber_id = int(campaign_id), int(subscriber_id)
        return self._fast_reader.dumps(
            [campaign_id, subscriber_id], f"[{campaign_id},{subscriber_id}]"
        )

    def read_reader_key(self, key: str) -> tuple[int, int]:
        payload = Signer._load(self._reader, key)
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(part, int) for part in payload)
        ):
            raise TokenError("this link is not valid")
        return payload[0], payload[1]

    def click_token(self, campaign_id: int, link: int) -> str:
        return str(self._click.dumps([int(campaign_id), int(link)]))

    def read_click_token(self, token: str) -> ClickClaim:
        payload = Signer._load(self._click, token)
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(part, int) for part in payload)
        ):
            raise TokenError("this link is not valid")
        return ClickClaim(payload[0], payload[1], None)
