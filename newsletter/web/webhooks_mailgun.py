"""``POST /webhooks/mailgun``: Mailgun's event webhooks (JSON, signed).

Each request carries ``signature: {timestamp, token, signature}``, the signature being
an HMAC-SHA256 of timestamp + token with the HTTP webhook signing key (the variable
``mailgun.webhook_signing_key_env``; without it every request is refused, 403). A
signature that does not check out, or a timestamp more than ``mailgun.webhook_max_age``
seconds away, is a 403. The token is claimed in the same transaction that applies the
event: a request whose token was seen before is a replay and is refused with 406 (which
Mailgun takes as "rejected, do not retry"); a worker killed before the commit claims
nothing, so Mailgun's retry goes through.

What each event does (through :class:`~newsletter.send.provider_events.EventProcessor`, the one
path every provider's events take):

- ``failed`` with severity ``permanent`` whose reply refuses the message or the sender
  (spam, DMARC, a blocklist: :func:`newsletter.send.mailbox.blocks.is_policy_block`):
  the message failed as blocked, nobody suppressed (``status`` and ``report`` count it).
- Any other ``failed`` with severity ``permanent``: the message failed; the subscriber is bounced,
  or, when Mailgun refused because the address is on one of its suppression lists
  (``suppress-unsubscribe``, ``suppress-complaint``), unsubscribed or complained.
  ``temporary``: Mailgun has the message and keeps trying: ``sent``.
- ``complained``: complained (the message was delivered).
- ``unsubscribed``: unsubscribed (recorded as Mailgun's).
- ``accepted``, ``delivered``: the message's ledger row is ``sent``.
- ``opened``, ``clicked`` (``mailgun.tracking``): counted for the campaign and the reader
  (a click with its ``url``); ignored while ``mailgun.tracking`` is off.

Rows are found through the ``campaign_id`` and ``subscriber_id`` user variables the
sender set, checked against the address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, request

from newsletter.config import env_secret
from newsletter.send.mailbox.blocks import is_policy_block
from newsletter.send.webhook_event import ProviderEvent, provider_event
from newsletter.web.context import services
from newsletter.web.security import csrf_exempt

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks_mailgun", __name__)
SOURCE = "mailgun"
SUPPRESSED = {"suppress-unsubscribe": "unsubscribed", "suppress-complaint": "complained"}


@blueprint.post("/webhooks/mailgun")
@csrf_exempt
def mailgun() -> Response:
    settings = services().config.mailgun
    key = env_secret(settings.webhook_signing_key_env)
    if key is None:
        log.warning(
            "refused a Mailgun webhook: no signing key; set %s", settings.webhook_signing_key_env
        )
        abort(403)
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        abort(403)  # unsigned, as far as anyone can tell
    signature = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(signature, dict):
        abort(403)
    timestamp, token, digest = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in (timestamp, token, digest)):
        abort(403)
    assert isinstance(timestamp, str) and isinstance(token, str) and isinstance(digest, str)
    if not is_fresh(timestamp, now=time.time(), max_age=settings.webhook_max_age):
        abort(403)
    if not verify(key, timestamp=timestamp, token=token, signature=digest):
        abort(403)
    data = body.get("event-data")
    if not isinstance(data, dict):
        abort(400)
    event = read_event(data)
    tally = services().events.apply(
        [event] if event is not None else [], claims=[f"{SOURCE}-token:{token}"]
    )
    if tally.replayed:
        log.warning("refused a Mailgun webhook: its token was used before (a replay)")
        abort(406)
    log.info(
        "Mailgun webhook (%s): %d applied, %d already seen, %d ignored",
        str(data.get("event"))[:40],
        tally.applied,
        tally.duplicates,
        tally.ignored,
    )
    return Response("ok\n", status=200, mimetype="text/plain")


def verify(key: str, *, timestamp: str, token: str, signature: str) -> bool:
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def is_fresh(timestamp: str, *, now: float, max_age: int) -> bool:
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    return abs(now - signed_at) <= max_age


def read_event(data: Mapping[str, Any]) -> ProviderEvent | None:
    """The event of one Mailgun ``event-data``; None for one that changes nothing here."""
    kind = data.get("event")
    severity = data.get("severity")
    reason = data.get("reason")
    if kind == "failed" and severity == "permanent" and _policy_block(data):
        ledger_kind, status = "blocked", None
    elif kind == "failed" and severity == "permanent":
        ledger_kind, status = "bounce", SUPPRESSED.get(str(reason), "bounced")
    elif kind == "failed":
        ledger_kind, status = "deferred", None
    elif kind == "complained":
        ledger_kind, status = "delivered", "complained"
    elif kind == "unsubscribed":
        ledger_kind, status = "delivered", "unsubscribed"
    elif kind in ("accepted", "delivered"):
        ledger_kind, status = ("processed" if kind == "accepted" else "delivered"), None
    elif kind in ("opened", "clicked"):
        ledger_kind, status = ("open" if kind == "opened" else "click"), None
    else:
        return None
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    delivery = data.get("delivery-status")
    detail = (
        delivery.get("description") or delivery.get("message")
        if isinstance(delivery, dict)
        else None
    )
    return provider_event(
        SOURCE,
        event_id=data.get("id"),
        kind=ledger_kind,
        email=data.get("recipient"),
        tags=data.get("user-variables"),
        message_id=message_id,
        new_status=status,
        reason=" ".join(str(part) for part in (kind, severity, reason, detail) if part),
        url=data.get("url"),
    )


def _policy_block(data: Mapping[str, Any]) -> bool:
    """Whether the receiving server refused the message or the sender (its reply in
    ``delivery-status``, read as the mailbox reads a bounce's), not the address; an
    address on Mailgun's own suppression lists is never a block."""
    delivery = data.get("delivery-status")
    if str(data.get("reason")) in SUPPRESSED or not isinstance(delivery, dict):
        return False
    reply = " ".join(
        str(delivery.get(key) or "") for key in ("code", "enhanced-code", "message", "description")
    )
    return is_policy_block(str(delivery.get("enhanced-code") or ""), reply)
