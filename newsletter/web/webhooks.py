"""``POST /webhooks/sendgrid``: the Signed Event Webhook.

Nothing in the body is read before the signature over the exact raw bytes checks out
and its timestamp is fresh (a captured request cannot be replayed later); anything
else is a plain 403. A signed body that is not a JSON list of objects (or nests too
deep to parse) is a 400; within a list, values of the wrong type or out of range (an
id past 64 bits, a NUL character) make that event ignored, never a 500 that SendGrid
would retry for a day. Events are then applied by :mod:`newsletter.web.events`.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, abort, request

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
    tally = site.events.process(events)
    log.info(
        "SendGrid webhook: %d applied, %d already seen, %d ignored",
        tally.applied,
        tally.duplicates,
        tally.ignored,
    )
    return Response("ok\n", status=200, mimetype="text/plain")
