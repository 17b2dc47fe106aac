"""The message headers shown in the preview's Headers view.

They are built by the send's own path: the campaign's content
(:func:`newsletter.send.copies.campaign_content`, with the headers every copy shares),
the reader's copy (:class:`newsletter.send.copies.RecipientBuilder`: their
``List-Unsubscribe``, its mailto carrying their signed token) and
:func:`newsletter.send.providers.message_headers`, which the outbox and SMTP write. So
the view shows what this reader's copy carries. ``Date`` and ``Message-ID`` are left
out: each real message gets its own.
"""

from __future__ import annotations

from newsletter.config import Config
from newsletter.models import CompiledIssue
from newsletter.preview.recipients import Recipient
from newsletter.send import providers
from newsletter.send.campaign_rows import Campaign
from newsletter.send.copies import RecipientBuilder, campaign_content
from newsletter.send.ledger_batches import LedgerRecipient
from newsletter.send.return_tokens import ReturnTokens
from newsletter.tokens import SAMPLE_LINK_KEY, Links, Signer, secret_or_development

_PER_MESSAGE = ("Date", "Message-ID")


def message_headers(
    config: Config,
    *,
    compiled: CompiledIssue,
    recipient: Recipient,
    campaign: Campaign | None = None,
) -> list[tuple[str, str]]:
    """The headers of ``recipient``'s copy of the issue, in the order they are written;
    ``campaign``: the issue's campaign once it started (its id is in the tokens)."""
    secret = secret_or_development()
    content = campaign_content(
        config, compiled, topics=None if campaign is None else campaign.topics
    )
    build = RecipientBuilder(
        config,
        Links(config, Signer(secret)),
        None if campaign is None else campaign.id,
        ReturnTokens(secret),
    )
    subscriber_id, link_key = recipient.subscriber or (0, SAMPLE_LINK_KEY)
    person = recipient.personalization
    copy = build(LedgerRecipient(subscriber_id, person.email, person.name, link_key))
    headers = providers.message_headers(content, copy, message_id="")
    return [(name, value) for name, value in headers.items() if name not in _PER_MESSAGE]
