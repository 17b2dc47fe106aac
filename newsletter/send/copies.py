"""A campaign's copies, made before any is handed over: the content every copy shares
(:func:`campaign_content`: the issue with its shared link and list headers) and each
reader's part (:class:`RecipientBuilder`: their links, List-Unsubscribe and tags)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from newsletter.config import Config
from newsletter.models import CompiledIssue, Personalization
from newsletter.render.mail import ListUnsubscribe, shared_list_headers
from newsletter.safe_text import without_controls
from newsletter.send import ledger_batches
from newsletter.send.providers import Content, Recipient
from newsletter.send.return_tokens import ReturnTokens
from newsletter.tokens import DEVELOPMENT_SECRET, Links, Signer

TEST_PREFIX = "[TEST] "


def campaign_content(
    config: Config,
    compiled: CompiledIssue,
    *,
    topics: Sequence[str] | None = None,
    test: bool = False,
    view_url: str | None = None,
) -> Content:
    """The issue's content for every recipient, its one shared link already filled in
    (``view_url``: instead of the issue's page in the archive), with the list headers
    every copy shares; ``topics``: the campaign's (default: the issue's)."""
    subject = f"{TEST_PREFIX}{compiled.subject}" if test else compiled.subject
    issue = compiled.issue
    content = Content.from_config(
        config,
        subject=subject,
        html=compiled.html,
        text=compiled.text,
        headers=shared_list_headers(
            config, campaign=issue.slug, topics=issue.topics if topics is None else topics
        ),
    )
    # The view-in-browser link is the same for everyone and carries no token.
    if view_url is None:
        view_url = Links(config, Signer(DEVELOPMENT_SECRET)).view(compiled.issue.slug)
    return replace(
        content.filled({"view_url": view_url}), greeting_fallback=compiled.greeting_fallback
    )


class RecipientBuilder:
    """Each recipient's links, List-Unsubscribe header and tags: the per-recipient hot path."""

    def __init__(
        self,
        config: Config,
        links: Links,
        campaign_id: int | None,
        returns: ReturnTokens | None = None,
        click_key: Callable[[int, int], str] | None = None,
    ) -> None:
        self.links = links
        # tracking.per_subscriber: the reader's part of each tracked link, by subscriber id.
        self.click_key = (
            partial(click_key, campaign_id)
            if click_key is not None and campaign_id is not None
            else None
        )
        self.campaign_id = campaign_id
        self.campaign_tag = str(campaign_id)
        # The one rule for List-Unsubscribe (render/mail.py), made once.
        self.list_unsubscribe = ListUnsubscribe(config)
        # With the return-path tokens: a signed mailto subject and VERP sender per copy.
        self.returns = returns
        self.mailto_token = returns is not None and bool(config.unsubscribe_mailto)
        self.bounce_address = config.bounces.address if returns else None

    def __call__(self, row: ledger_batches.LedgerRecipient) -> Recipient:
        subscriber_id, email, name, link_key = row
        campaign_id = self.campaign_id
        unsubscribe_url, preferences_url = self.links.message_links(
            subscriber_id, link_key, campaign_id
        )
        personalization = Personalization(
            email=email,
            # A name from a signup form must not be able to break the To header.
            name=without_controls(name),
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_url,
            click_key="" if self.click_key is None else self.click_key(subscriber_id),
        )
        token = None
        envelope_sender = None
        if self.returns is not None:
            if self.mailto_token:
                token = self.returns.token("mailto", subscriber_id, link_key, campaign_id)
            if self.bounce_address:
                envelope_sender = self.returns.envelope_sender(
                    self.bounce_address, subscriber_id, link_key, campaign_id
                )
        return Recipient(
            personalization,
            headers={"List-Unsubscribe": self.list_unsubscribe(unsubscribe_url, token)},
            tags={"campaign_id": self.campaign_tag, "subscriber_id": str(subscriber_id)},
            envelope_sender=envelope_sender,
        )
