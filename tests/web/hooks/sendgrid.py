"""SendGrid's signed event batches."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from newsletter.web.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.web.hooks.base import Hook, tags


class SendGridHook(Hook):
    """SendGrid posts batches of events, signed (ECDSA over timestamp + body); a record
    here is one event, posted as a batch of its own (a list: a batch as it is)."""

    name = "sendgrid"
    unreadable = 400

    def __init__(self, app: Flask, key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__(app)
        self.key = key

    def post(self, record: Any) -> TestResponse:
        events = record if isinstance(record, list | bytes) else [record]
        return post_to_sendgrid(self.client, events, key=self.key)

    @staticmethod
    def event(kind: str, reader: Subscriber, campaign_id: int | None, number: int,
              **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {
            "email": reader.email,
            "timestamp": int(time.time()),
            "event": kind,
            "sg_event_id": f"{kind}-{reader.id}-{number}",
            "sg_message_id": f"message-{reader.id}.filter0001",
            **tags(reader, campaign_id),
            **extra,
        }

    def forge(self, record: Any) -> TestResponse:
        stranger = ec.generate_private_key(ec.SECP256R1())
        return post_to_sendgrid(self.client, [record], key=stranger)

    def bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        return self.event("bounce", reader, campaign_id, number, type="bounce",
                          reason="550 5.1.1 no such user")  # fmt: skip

    def soft_bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any:  # fmt: skip
        return self.event("deferred", reader, campaign_id, number, attempt="2",
                          response="451 4.2.0 mailbox busy, try again later")  # fmt: skip

    def blocked(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        spam = "550 5.7.1 Message rejected as spam by Content Filtering"
        return self.event("bounce", reader, campaign_id, number, type="blocked", reason=spam)

    def complaint(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                  ) -> Any:  # fmt: skip
        return self.event("spamreport", reader, campaign_id, number)

    def unsubscribe(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any | None:  # fmt: skip
        return self.event("unsubscribe", reader, campaign_id, number)

    def delivery(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                 ) -> Any:  # fmt: skip
        return self.event("delivered", reader, campaign_id, number)

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        return self.event("open", reader, campaign_id, number)

    def click(self, reader: Subscriber, campaign_id: int | None, number: int, url: str) -> Any:
        return self.event("click", reader, campaign_id, number, url=url)


def post_to_sendgrid(
    client: FlaskClient,
    events: list[dict[str, Any]] | bytes,
    *,
    key: ec.EllipticCurvePrivateKey,
    timestamp: int | None = None,
    signature: str | None = None,
) -> TestResponse:
    """A batch of SendGrid events, signed with ``key`` as SendGrid signs (``signature``:
    this one instead)."""
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    if signature is None:
        signed = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        signature = base64.b64encode(signed).decode()
    return client.post(
        "/webhooks/sendgrid",
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp},
    )
