"""Database failures (disk full, read-only file, lost connection) as errors users can act on.

The store's transactions keep the data consistent when a statement fails; what the
user needs is one line naming the database and what to do, not a driver traceback.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from newsletter.errors import StoreError

_FULL = ("database or disk is full", "no space left", "disk full", "diskfull")
_READ_ONLY = ("readonly database", "read-only", "read only", "permission denied")
_UNREACHABLE = (
    "server closed the connection",
    "connection refused",
    "could not connect",
    "connection failed",
    "terminating connection",
    "connection is closed",
    "unable to open database",
    "disk i/o error",
    "the connection is lost",
)


def database_error(error: SQLAlchemyError, url: str) -> StoreError:
    """A :class:`StoreError` for ``error`` on the database at ``url`` (password hidden)."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "(the configured database)"
    cause = getattr(error, "orig", None) or error
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:300]
    lowered = reason.lower()
    if any(words in lowered for words in _FULL):
        todo = "is full; free some disk space, then run the command again"
    elif any(words in lowered for words in _READ_ONLY):
        todo = (
            "cannot be written; make the database (file and folder) writable, or point "
            "database_url / NEWSLETTER_DATABASE_URL at a writable one, then run it again"
        )
    elif any(words in lowered for words in _UNREACHABLE):
        todo = (
            "cannot be reached; check that it is running and reachable (database_url / "
            "NEWSLETTER_DATABASE_URL), then run the command again"
        )
    else:
        todo = "failed; run the command again with --debug for the details"
    return StoreError(
        f"the database {shown} {todo} ({reason}). Nothing was half-written: every change "
        "is one transaction, and a campaign resumes where it stopped"
    )
