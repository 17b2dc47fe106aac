"""SES's events inside SNS notifications signed by the test's certificate."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask
from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from newsletter.web.webhooks_ses import string_to_sign
from tests.fakes.sns import FakeSns
from tests.web.hooks.base import SES_TOPIC, Hook, tags


class SesHook(Hook):
    """SES publishes each event to SNS, which posts it signed; a builder here returns the
    signed notification, so posting the same one again is SNS's retry of it."""

    name = "ses"

    def __init__(self, app: Flask, sns: FakeSns) -> None:
        super().__init__(app)
        self.sns = sns

    def post(self, record: Any) -> TestResponse:
        body = record if isinstance(record, bytes) else json.dumps(record).encode()
        kind = "" if isinstance(record, bytes) else record.get("Type", "")
        return self.client.post(
            "/webhooks/ses",
            data=body,
            content_type="text/plain; charset=UTF-8",
            headers={"x-amz-sns-message-type": kind},
        )

    def forge(self, record: Any) -> TestResponse:
        """``record`` signed by a key that is not the certificate's."""
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        canonical = string_to_sign(record)
        assert canonical is not None
        signature = stranger.sign(canonical.encode(), padding.PKCS1v15(), hashes.SHA1())
        return self.post({**record, "Signature": base64.b64encode(signature).decode()})

    def notification(self, event: dict[str, Any], number: int = 1, *, version: str = "1"
                     ) -> dict[str, str]:  # fmt: skip
        """``event`` as SNS posts it, signed; its ``MessageId`` made of the event and
        ``number``, so the same event and number again is SNS's retry."""
        return self.sns.sign(self.unsigned(event, number), version=version)

    @staticmethod
    def unsigned(event: dict[str, Any], number: int = 1) -> dict[str, str]:
        return {
            "Type": "Notification",
            "MessageId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{number}/{json.dumps(event)}")),
            "TopicArn": SES_TOPIC,
            "Message": json.dumps(event),
            "Timestamp": "2026-12-07T04:30:00.000Z",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        }

    @classmethod
    def bounce_event(cls, reader: Subscriber, campaign_id: int | None = None,
                     bounce_type: str = "Permanent", sub_type: str = "General"
                     ) -> dict[str, Any]:  # fmt: skip
        bounce = {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [{"emailAddress": reader.email}],
        }
        return cls.event("Bounce", reader, campaign_id, bounce=bounce)

    @classmethod
    def complaint_event(cls, reader: Subscriber, campaign_id: int | None = None,
                        feedback: str = "abuse") -> dict[str, Any]:  # fmt: skip
        complaint = {
            "complainedRecipients": [{"emailAddress": reader.email}],
            "complaintFeedbackType": feedback,
        }
        return cls.event("Complaint", reader, campaign_id, complaint=complaint)

    def bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        return self.notification(self.bounce_event(reader, campaign_id), number)

    def soft_bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any:  # fmt: skip
        return self.notification(self.bounce_event(reader, campaign_id, "Transient"), number)

    def blocked(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        event = self.bounce_event(reader, campaign_id, "Transient", "ContentRejected")
        return self.notification(event, number)

    def complaint(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                  ) -> Any:  # fmt: skip
        return self.notification(self.complaint_event(reader, campaign_id), number)

    def delivery(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                 ) -> Any:  # fmt: skip
        return self.notification(self.event("Delivery", reader, campaign_id), number)

    @staticmethod
    def event(kind: str, reader: Subscriber, campaign_id: int | None, **detail: Any
              ) -> dict[str, Any]:  # fmt: skip
        echoed = {name: [value] for name, value in tags(reader, campaign_id).items()}
        return {
            "eventType": kind,
            "mail": {
                "timestamp": "2026-12-07T04:00:00.000Z",
                "source": "Newsletter <news@example.org>",
                "messageId": f"0102018c-ses-message-{reader.id}",
                "destination": [reader.email],
                "tags": echoed,
            },
            **detail,
        }

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        opened = {
            "ipAddress": "192.0.2.10",
            "timestamp": "2026-12-07T05:00:00.000Z",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
        }
        return self.notification(self.event("Open", reader, campaign_id, open=opened), number)

    def click(self, reader: Subscriber, campaign_id: int | None, number: int, url: str) -> Any:
        clicked = {
            "ipAddress": "192.0.2.10",
            "link": url,
            "linkTags": {},
            "timestamp": "2026-12-07T06:00:00.000Z",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
        }
        return self.notification(self.event("Click", reader, campaign_id, click=clicked), number)
