"""The message headers shown in the preview's Headers view.

They come from :func:`newsletter.render.mail.message_headers`, the builder the sender uses, so
the view shows what will be sent. ``Date`` and ``Message-ID`` are left out: each real
message gets its own.
"""

from __future__ import annotations

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.render import mail

_PER_MESSAGE = ("Date", "Message-ID")


def message_headers(
    config: Config, *, subject: str, recipient: Personalization
) -> list[tuple[str, str]]:
    """The headers of ``recipient``'s copy, in the order they are written."""
    headers = mail.message_headers(
        config,
        to=mail.format_address(recipient.email, recipient.name),
        subject=subject,
        unsubscribe_url=recipient.unsubscribe_url,
    )
    return [(name, value) for name, value in headers.items() if name not in _PER_MESSAGE]
