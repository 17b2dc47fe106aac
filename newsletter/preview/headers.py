"""The message headers shown in the preview's Headers view.

These follow what the sender puts on every message (RFC 2369 ``List-Unsubscribe`` with
the web link first, RFC 8058 one-click, ``List-Id``). Addresses are shown as a reader's
mail client displays them, not RFC 2047-encoded as on the wire.
"""

from __future__ import annotations

from email.headerregistry import Address

from newsletter.config import Config
from newsletter.models import Personalization


def display_address(email: str, name: str = "") -> str:
    local, _, domain = email.rpartition("@")
    return str(Address(display_name=name, username=local, domain=domain))


def message_headers(
    config: Config, *, subject: str, recipient: Personalization
) -> list[tuple[str, str]]:
    """The headers of ``recipient``'s copy, in the order a mail client lists them."""
    unsubscribe = [f"<{recipient.unsubscribe_url}>"]
    if config.unsubscribe_mailto:
        unsubscribe.append(f"<mailto:{config.unsubscribe_mailto}?subject=unsubscribe>")
    headers = [
        ("From", display_address(config.sender.email, config.sender.name)),
        ("To", display_address(recipient.email, recipient.name)),
    ]
    if config.reply_to:
        headers.append(("Reply-To", display_address(config.reply_to)))
    headers += [
        ("Subject", subject),
        ("List-Unsubscribe", ", ".join(unsubscribe)),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("List-Id", config.list_id_header),
    ]
    return headers
