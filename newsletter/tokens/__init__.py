"""Signed tokens for the links in every message and on the subscriber web app.

One package, used by the sender (to build links) and the web app (to read them), so
both always agree. Tokens are signed with ``NEWSLETTER_SECRET_KEY`` (itsdangerous,
HMAC-SHA1 over a purpose-specific salt, so an unsubscribe token is no confirm token).

- unsubscribe and preferences tokens never expire: CAN-SPAM wants the opt-out in a
  message to keep working for 30 days and more, and old mail gets read.
- confirm and manage tokens expire (``web.link_max_age_days``, 7 days by default).

The parts: ``signing_key`` (the secret), ``fast_dumps`` (signing at sending speed),
``signer`` (the subscriber tokens), ``links`` (the URLs built from them) and ``tracking``
(click and open tokens). The rest of the package imports from here.
"""

from __future__ import annotations

from newsletter.tokens.links import SAMPLE_LINK_KEY, Links, sample_personalization
from newsletter.tokens.signer import LinkClaim, Signer, UnsubscribeClaim
from newsletter.tokens.signing_key import DEVELOPMENT_SECRET, require_secret, secret_or_development
from newsletter.tokens.tracking import ClickClaim, TrackingSigner

__all__ = [
    "DEVELOPMENT_SECRET",
    "SAMPLE_LINK_KEY",
    "ClickClaim",
    "LinkClaim",
    "Links",
    "Signer",
    "TrackingSigner",
    "UnsubscribeClaim",
    "require_secret",
    "sample_personalization",
    "secret_or_development",
]
