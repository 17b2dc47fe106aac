"""Sending workflows: one transactional message, and (see :mod:`newsletter.campaign`)
whole campaigns.
"""

from __future__ import annotations

from newsletter.config import Config
from newsletter.mail import format_address, safe_header
from newsletter.models import Personalization
from newsletter.providers import Batch, Content, Delivery, Recipient, get_provider


def shared_content(
    config: Config,
    *,
    subject: str,
    html: str,
    text: str,
    headers: dict[str, str] | None = None,
    transactional: bool = False,
) -> Content:
    """Content from the configured sender, with ``headers`` shared by every recipient."""
    return Content(
        sender=format_address(config.sender.email, config.sender.name),
        sender_email=config.sender.email,
        sender_name=config.sender.name,
        subject=safe_header("Subject", subject),
        html=html,
        text=text,
        reply_to=config.reply_to,
        headers=headers or {},
        transactional=transactional,
    )


def send_transactional(config: Config, *, to: str, subject: str, html: str, text: str) -> Delivery:
    """One message to one address through the configured provider, recorded in no campaign.

    For mail a reader asked for (double opt-in confirmations, "email me my link"): no
    list headers, no unsubscribe group. Returns the :class:`Delivery` (``sent`` with the
    provider's message id, or ``failed``/``deferred`` with the reason); raises
    :class:`~newsletter.errors.SendError` when the provider cannot be reached or refuses
    the request as a whole (bad credentials, bad request).
    """
    content = shared_content(config, subject=subject, html=html, text=text, transactional=True)
    recipient = Recipient(Personalization(email=safe_header("To", to)))
    with get_provider(config) as provider:
        [delivery] = provider.send_batch(Batch(content, [recipient]))
    return delivery
