"""``POST /webhooks/sendgrid``: the Signed Event Webhook.

Nothing in the body is read before the signature over the exact raw bytes checks out
and its timestamp is fresh (a captured request cannot be replayed later); anything
else is a plain 403. A signed body that is not a JSON list of objects (or nests too
deep to parse) is a 400; within a list, values of the wrong type or out of range (an
id past 64 bits, a NUL character) make that event ignored, never a 500 that SendGrid
would retry for a day. The events read (:func:`read_events`) are applied by
:class:`newsletter.send.provider_events.EventProcessor`, as every provider's are.

What SendGrid's events mean here:

- ``bounce`` (hard, ``type: bounce``) and ``dropped`` with reason ``Bounced Address``
  -> bounced. A ``type: blocked`` bounce is the receiving server refusing the sender
  for now (reputation, content), not the address: it fails the delivery as blocked
  (``newsletter status`` and ``report`` count it), nothing more.
- ``spamreport``, and ``dropped`` with reason ``Spam Reporting Address`` -> complained.
- ``unsubscribe``, ``group_unsubscribe``, and ``dropped`` with reason
  ``Unsubscribed Address`` -> unsubscribed. ``group_resubscribe`` changes nothing:
  the store never reactivates a suppressed subscriber behind the editor's back.
- ``processed``, ``delivered``, ``deferred``, ``bounce`` and ``dropped`` also move the
  message's ledger row, found through the ``campaign_id`` and ``subscriber_id`` that
  the sender puts in ``custom_args`` and SendGrid echoes in every event.
- ``open`` and ``click`` count when ``sendgrid.tracking`` is on, and are ignored
  otherwise (SendGrid may still send them if tracking is on in its settings; the
  editor's choice here wins).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, Response, abort, request

from newsletter.send.webhook_event import (
    CAMPAIGN_ARG,
    SUBSCRIBER_ARG,
    ProviderEvent,
    as_id,
    as_text,
    click_url,
)
from newsletter.store.subscriber_rows import lookup_key
from newsletter.web.context import services
from newsletter.web.security import csrf_exempt
from newsletter.web.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    is_fresh,
    verify_signature,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__)
SOURCE = "sendgrid"
UNSUBSCRIBE_EVENTS = frozenset({"unsubscribe", "group_unsubscribe"})
DROP_REASONS = {
    "bounced address": "bounced",
    "spam reporting address": "complained",
    "unsubscribed address": "unsubscribed",
}


@blueprint.post("/webhooks/sendgrid")
@csrf_exempt
def sendgrid() -> Response:
    site = services()
    key = site.webhook_key
    if key is None:
        log.warning(
            "refused a SendGrid webhook: no verification key; set %s",
            site.config.sendgrid.webhook_public_key_env,
        )
        abort(403)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    max_age = site.config.sendgrid.webhook_max_age
    if not is_fresh(timestamp, now=time.time(), max_age=max_age):
        abort(403)
    body = request.get_data(cache=False)
    if not verify_signature(key, body=body, signature=signature, timestamp=timestamp):
        abort(403)
    try:
        events = json.loads(body)
    except (ValueError, RecursionError):
        # Not JSON, or nested deeper than the parser recurses: signed, but unusable.
        abort(400)
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        abort(400)
    tally = site.events.apply(read_events(events))
    log.info(
        "SendGrid webhook: %d applied, %d already seen, %d ignored",
        tally.applied,
        tally.duplicates,
        tally.ignored,
    )
    return Response("ok\n", status=200, mimetype="text/plain")


def read_events(events: Iterable[Mapping[str, Any]]) -> list[ProviderEvent]:
    """SendGrid's events as the events every provider's webhook hands over."""
    return [_read(event) for event in events]


def _read(event: Mapping[str, Any]) -> ProviderEvent:
    # SendGrid's event ids are stored as they come (the other providers' are prefixed
    # with their name), so a batch retried across an upgrade is still a duplicate.
    event_id = as_text(event.get("sg_event_id"))
    kind = as_text(event.get("event"))
    if kind == "bounce" and event.get("type") == "blocked":
        kind = "blocked"  # the server refused the sender or the content, not the address
    email = as_text(event.get("email"))
    return ProviderEvent(
        event_id=event_id[:100] if event_id else None,
        kind=kind or "",
        campaign_id=as_id(event.get(CAMPAIGN_ARG)),
        subscriber_id=as_id(event.get(SUBSCRIBER_ARG)),
        email_key=lookup_key(email) if email else None,
        message_id=as_text(event.get("sg_message_id")),
        new_status=_status_after(event),
        reason=(as_text(str(event.get("reason") or kind or "")) or "")[:500],
        source=SOURCE,
        url=click_url(event.get("url")) if kind == "click" else None,
    )


def _status_after(event: Mapping[str, Any]) -> str | None:
    kind = event.get("event")
    if kind == "bounce":
        return None if event.get("type") == "blocked" else "bounced"
    if kind == "dropped":
        return DROP_REASONS.get(str(event.get("reason", "")).strip().lower())
    if kind == "spamreport":
        return "complained"
    if kind in UNSUBSCRIBE_EVENTS:
        return "unsubscribed"
    return None
