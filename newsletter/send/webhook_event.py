"""One provider event as a webhook reads it: :class:`ProviderEvent`, and
:func:`provider_event` making one from another provider's values, each checked for type
(:func:`as_text`, :func:`as_id`, :func:`click_url`). ``web/webhooks*.py`` read their
requests into these; :mod:`newsletter.send.provider_events` applies them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from newsletter.store.subscriber_rows import lookup_key

# The keys under which the sender gives every provider the message's campaign and
# reader (SendGrid's custom_args, Postmark's Metadata, ...), echoed in its events.
CAMPAIGN_ARG = "campaign_id"
SUBSCRIBER_ARG = "subscriber_id"
MAX_URL = 2048


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event in the terms :mod:`newsletter.send.provider_events` applies,
    checked for type.

    Made by :func:`provider_event` (or, for SendGrid, by ``web/webhooks.py`` from the
    same helpers). ``kind`` is SendGrid's vocabulary (see provider_events' text);
    ``new_status`` what the subscriber becomes.
    """

    event_id: str | None  # unique per provider event (others' prefixed with their name)
    kind: str
    campaign_id: int | None
    subscriber_id: int | None  # as echoed by the provider
    email_key: str | None
    message_id: str | None
    new_status: str | None
    reason: str
    source: str  # who recorded an unsubscribe (the history shows it): "sendgrid", ...
    url: str | None = None  # a click's link


def provider_event(
    source: str,
    *,
    event_id: object,
    kind: str,
    email: object,
    tags: object,
    message_id: object,
    new_status: str | None,
    reason: object,
    url: object = None,
) -> ProviderEvent:
    """An event of another provider's webhook, its values checked as SendGrid's are:
    ``tags`` is the mapping the provider echoed (campaign and subscriber id), ``url`` a
    click's link; anything of the wrong type counts as absent."""
    tags = tags if isinstance(tags, Mapping) else {}
    address = as_text(email)
    identifier = as_text(event_id if isinstance(event_id, str) else None)
    return ProviderEvent(
        event_id=f"{source}:{identifier}"[:100] if identifier else None,
        kind=kind,
        campaign_id=as_id(tags.get(CAMPAIGN_ARG)),
        subscriber_id=as_id(tags.get(SUBSCRIBER_ARG)),
        email_key=lookup_key(address) if address else None,
        message_id=as_text(message_id),
        new_status=new_status,
        reason=(as_text(reason) or kind)[:500],
        source=source,
        url=click_url(url) if kind == "click" else None,
    )


def click_url(value: object) -> str | None:
    """A click event's URL, if it is a web link of sane length (anything else would only
    fill the report with noise someone posted)."""
    url = as_text(value)
    if not url or len(url) > MAX_URL or not url.startswith(("http://", "https://")):
        return None
    return url


def as_text(value: object) -> str | None:
    """A string field, without NUL characters (PostgreSQL refuses them in text)."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "")


def as_id(value: object) -> int | None:
    """An echoed id: providers echo them as strings. Out of the 64-bit range (no such id
    exists) counts as absent, so the database never sees it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdecimal() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and 0 < value < 2**63:
        return value
    return None
