"""The one exception family of the project.

Every error a user can act on is a :class:`NewsletterError` whose message names the
file, line or key at fault and what to do. The CLI prints it as ``Error: ...`` and
exits 1; the library never prints or exits.
"""

from __future__ import annotations

from typing import Any


class NewsletterError(Exception):
    """An error the user can fix; ``str(error)`` is the message shown to them."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message)


class ConfigError(NewsletterError):
    """``newsletter.yaml`` is missing, unreadable or invalid."""


class IssueFileError(NewsletterError):
    """An issue file (front matter or Markdown) is invalid."""


class TemplateError(NewsletterError):
    """A template is missing, does not parse, or uses an undefined variable."""


class RenderError(NewsletterError):
    """The MJML compile or CSS inlining failed."""


class StoreError(NewsletterError):
    """The subscriber store refused an operation (bad address, unknown topic, ...)."""


class ImportFileError(StoreError):
    """A subscribers CSV file cannot be read at all (encoding, header, delimiter)."""


class TokenError(NewsletterError):
    """A signed link token is forged, truncated, from another key, or expired."""


class ExpiredTokenError(TokenError):
    """A genuine link token that is past its age limit (confirm and manage links)."""


class SegmentError(NewsletterError):
    """A segment expression that does not parse, or a segment name nobody defined."""


class SendError(NewsletterError):
    """A campaign cannot start or must stop (checks failed, provider refused, lease held)."""


class ProviderError(SendError):
    """A provider refused a batch for good (bad request, bad credentials).

    ``deliveries``: when the provider got partway through the batch first (SMTP sends
    one message at a time), what became of each recipient, in order (a list of
    :class:`newsletter.send.providers.Delivery`); ``None`` when nothing was delivered.
    """

    def __init__(self, message: str, *, deliveries: list[Any] | None = None) -> None:
        super().__init__(message)
        self.deliveries = deliveries


class ProviderUnavailable(SendError):
    """A provider kept answering "try later" (or not at all) until the retries ran out.

    ``maybe_delivered`` is true when an attempt may have reached the provider before the
    answer was lost (a timeout, a dropped connection): those recipients become ``unknown``
    in the ledger instead of going back to ``pending``.
    """

    def __init__(
        self, message: str, *, maybe_delivered: bool, deliveries: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered
        self.deliveries = deliveries


class AutomationError(NewsletterError):
    """A sequence or digest that cannot run as configured (newsletter.automations)."""


class MailboxError(NewsletterError):
    """The mailbox of bounces and complaints cannot be read (connection, TLS, login)."""


class SiteError(NewsletterError):
    """The public site cannot be built (``newsletter site build``)."""
