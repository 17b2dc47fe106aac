"""One message a reader asked for (a signup confirmation, "email me my link"), through
the configured provider, recorded in no campaign."""

from __future__ import annotations

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.render.header_lines import safe_header
from newsletter.send.providers import Batch, Content, Delivery, Recipient, get_provider


def send_transactional(config: Config, *, to: str, subject: str, html: str, text: str) -> Delivery:
    """One message to one address through the configured provider, recorded in no campaign.

    For mail a reader asked for (double opt-in confirmations, "email me my link"): no
    list headers, no unsubscribe group. Returns the :class:`Delivery` (``sent`` with the
    provider's message id, or ``failed``/``deferred`` with the reason); raises
    :class:`~newsletter.errors.SendError` when the provider cannot be reached or refuses
    the request as a whole (bad credentials, bad request).
    """
    content = Content.from_config(config, subject=subject, html=html, text=text, transactional=True)
    recipient = Recipient(Personalization(email=safe_header("To", to)))
    with get_provider(config) as provider:
        [delivery] = provider.send_batch(Batch(content, [recipient]))
    return delivery
