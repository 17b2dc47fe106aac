"""The key every token is signed with (``NEWSLETTER_SECRET_KEY``): required, and strong,
for real mail and the web app; a public development key for builds and previews."""

from __future__ import annotations

from newsletter.config import SECRET_KEY_ENV, env_secret
from newsletter.errors import TokenError

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
