"""``POST /webhooks/postmark``: Postmark's Bounce, Spam Complaint, Subscription Change,
Delivery, Open and Click webhooks.

Postmark signs nothing; it authenticates with HTTP basic auth written into the webhook
URL (``https://postmark:PASSWORD@your.site/webhooks/postmark``). The password comes
from the variable ``postmark.webhook_password_env``; without it every request is
refused (403), and a wrong user or password is a 401, compared in constant time. Only
then is the body read: one JSON object per request, as Postmark posts them.

What each record does (through :class:`~newsletter.send.provider_events.EventProcessor`, the one
path every provider's events take, so a complaint is never downgraded and a retried
record is applied once):

- ``Bounce``: a ``HardBounce`` or ``BadEmailAddress`` fails the message and bounces the
  subscriber; ``SpamComplaint`` (a bounce type too) makes them complained; ``Blocked``
  and ``DMARCPolicy`` fail the message as blocked, nothing more (the receiver refused the
  sender or the content, not the address; ``status`` and ``report`` count it); any other
  type (soft, transient, auto-responder) means Postmark had the message: ``sent``.
- ``SpamComplaint``: complained, and the message was delivered.
- ``SubscriptionChange`` with ``SuppressSending: true``: an unsubscribe through
  Postmark's link or by hand is ``unsubscribed``, a hard bounce ``bounced``, a spam
  complaint ``complained``. Reactivation (``false``) changes nothing: the store never
  reactivates a suppressed subscriber behind the editor's back.
- ``Delivery``: the message's ledger row is ``sent``.
- ``Open`` and ``Click`` (``postmark.tracking``): counted for the campaign and the reader
  (a click with its ``OriginalLink``); ignored while ``postmark.tracking`` is off. Postmark
  posts every open (or the first only, as the webhook is set) and a reader's first click
  on each link.

Rows are found through the ``campaign_id`` and ``subscriber_id`` the sender put in
``Metadata`` (Postmark echoes it), checked against the address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, request

from newsletter.config import env_secret
from newsletter.send.webhook_event import ProviderEvent, provider_event
from newsletter.web.context import services
from newsletter.web.security import csrf_exempt

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks_postmark", __name__)
SOURCE = "postmark"
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress"})
# The receiver refused the content or the sender, not the address: counted as blocked.
POLICY_BLOCKS = frozenset({"Blocked", "DMARCPolicy"})
SUPPRESSION_STATUS = {
    "ManualSuppression": "unsubscribed",
    "HardBounce": "bounced",
    "SpamComplaint": "complained",
}


@blueprint.post("/webhooks/postmark")
@csrf_exempt
def postmark() -> Response:
    settings = services().config.postmark
    password = env_secret(settings.webhook_password_env)
    if password is None:
        log.warning(
            "refused a Postmark webhook: no password; set %s", settings.webhook_password_env
        )
        abort(403)
    auth = request.authorization
    given_user = auth.username if auth is not None and auth.type == "basic" else None
    given_password = auth.password if auth is not None and auth.type == "basic" else None
    # Both compared, always, in constant time.
    user_ok = hmac.compare_digest((given_user or "").encode(), settings.webhook_username.encode())
    password_ok = hmac.compare_digest((given_password or "").encode(), password.encode())
    if not (user_ok and password_ok):
        return Response(
            "401 Unauthorized\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Basic realm="webhooks"'},
        )
    try:
        record = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        abort(400)
    if not isinstance(record, dict):
        abort(400)
    event = read_record(record)
    if event is None:
        return Response("ignored\n", status=200, mimetype="text/plain")
    tally = services().events.apply([event])
    log.info(
        "Postmark webhook (%s): %d applied, %d already seen, %d ignored",
        str(record.get("RecordType"))[:40],
        tally.applied,
        tally.duplicates,
        tally.ignored,
    )
    return Response("ok\n", status=200, mimetype="text/plain")


def read_record(record: Mapping[str, Any]) -> ProviderEvent | None:
    """The event of one Postmark webhook record; None for a record that changes nothing."""
    kind = record.get("RecordType")
    metadata = record.get("Metadata")
    message_id = record.get("MessageID")
    if kind == "Bounce":
        bounce_type = record.get("Type")
        if bounce_type in HARD_BOUNCES:
            ledger_kind, status = "bounce", "bounced"
        elif bounce_type == "SpamComplaint":
            ledger_kind, status = "delivered", "complained"
        elif bounce_type in POLICY_BLOCKS:
            ledger_kind, status = "blocked", None
        else:
            ledger_kind, status = "deferred", None
        return provider_event(
            SOURCE,
            event_id=_event_id("bounce", record.get("ID")),
            kind=ledger_kind,
            email=record.get("Email"),
            tags=metadata,
            message_id=message_id,
            new_status=status,
            reason=f"{bounce_type}: {record.get('Description') or record.get('Details') or ''}",
        )
    if kind == "SpamComplaint":
        return provider_event(
            SOURCE,
            event_id=_event_id("complaint", record.get("ID")),
            kind="delivered",
            email=record.get("Email"),
            tags=metadata,
            message_id=message_id,
            new_status="complained",
            reason="spam complaint",
        )
    if kind == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            return None
        reason = str(record.get("SuppressionReason"))
        status = SUPPRESSION_STATUS.get(reason)
        if status is None:
            return None
        return provider_event(
            SOURCE,
            event_id=_event_id("change", message_id, record.get("ChangedAt"), reason),
            kind="delivered",
            email=record.get("Recipient"),
            tags=metadata,
            message_id=message_id,
            new_status=status,
            reason=f"Postmark subscription change: {reason}",
        )
    if kind in ("Open", "Click"):
        # Neither carries an id: the message, the moment and (a click) the link make one,
        # the same in Postmark's retry of the record.
        link = record.get("OriginalLink")
        unique = [message_id, record.get("ReceivedAt")]
        if kind == "Click":
            unique.append(hashlib.sha256(str(link).encode()).hexdigest()[:16])
        return provider_event(
            SOURCE,
            event_id=_event_id(kind.lower(), *unique),
            kind=kind.lower(),
            email=record.get("Recipient"),
            tags=metadata,
            message_id=message_id,
            new_status=None,
            reason=kind.lower(),
            url=link,
        )
    if kind == "Delivery":
        return provider_event(
            SOURCE,
            event_id=_event_id("delivery", message_id),
            kind="delivered",
            email=record.get("Recipient"),
            tags=metadata,
            message_id=message_id,
            new_status=None,
            reason="delivered",
        )
    return None


def _event_id(kind: str, *parts: object) -> str | None:
    """An id for the record from what makes it unique; None (always applied, as an event
    without an id is) if Postmark left a part out."""
    if any(not isinstance(part, str | int) or isinstance(part, bool) for part in parts):
        return None
    return ":".join((kind, *map(str, parts)))
