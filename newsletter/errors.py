"""The one exception family of the project.

Every error a user can act on is a :class:`NewsletterError` whose message names the
file, line or key at fault and what to do. The CLI prints it as ``Error: ...`` and
exits 1; the library never prints or exits.
"""

from __future__ import annotations


class NewsletterError(Exception):
    """An error the user can fix; ``str(error)`` is the message shown to them."""

    exit_code = 1

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


class SendError(NewsletterError):
    """A campaign cannot start or must stop (checks failed, provider refused, lease held)."""


class ProviderError(SendError):
    """A provider refused a batch for good (bad request, bad credentials)."""
