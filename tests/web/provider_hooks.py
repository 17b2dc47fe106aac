"""Postmark's, Mailgun's and SES's webhooks, driven as each provider drives its own.

A :class:`Hook` builds a provider's records in its documented shape (Postmark's records,
Mailgun's ``event-data``, SES's events inside signed SNS notifications) and posts them
to the real web app, authenticated as that provider authenticates: Postmark's basic
auth, Mailgun's HMAC over a fresh timestamp and token, SNS's signature by the test's
certificate (:class:`tests.fakes.sns.FakeSns`). Every builder names the reader, the
campaign (or None) and a number that makes the record's own id; the same number again
is the same record, as a provider's retry sends it.

``make_hook(name, **settings)`` (a fixture in ``tests/web/conftest.py``) makes one over
an app whose ``<name>:`` settings are updated with ``settings`` (``tracking=True``).
SendGrid's (:class:`SendGridHook`) builds only opens and clicks, for the engagement
tests; its other events are tests/web/test_webhook*.py's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from newsletter.reports.queries import IssueReport
from newsletter.web.context import EXTENSION, Services
from newsletter.web.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from newsletter.web.webhooks_ses import string_to_sign
from tests.fakes.sns import FakeSns

PROVIDERS = ("postmark", "mailgun", "ses")  # what test_webhook_contract.py holds to
TRACKERS = ("sendgrid", *PROVIDERS)  # the providers whose opens and clicks are counted
POSTMARK_PASSWORD = "postmark-webhook-password-for-tests"
MAILGUN_KEY = "mailgun-webhook-signing-key-for-tests"
SES_TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-events"


class Hook:
    """One provider's webhook on one app: ``post`` a record as the provider would,
    ``forge`` one as a stranger would, and the records every provider has. Each builder
    takes the reader, the campaign id or None, and a number (the same number: the same
    record, as the provider's retry)."""

    name = ""
    refused = 403  # the answer to a request whose credentials or signature are wrong
    unreadable = 403  # the answer to a body that is not JSON, or nests too deep

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()

    @property
    def site(self) -> Services:
        services: Services = self.app.extensions[EXTENSION]
        return services

    def post(self, record: Any) -> TestResponse:
        raise NotImplementedError

    def forge(self, record: Any) -> TestResponse:
        """Post ``record`` with credentials or a signature that are not the provider's."""
        raise NotImplementedError

    def bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        """A permanent bounce: the address does not exist."""
        raise NotImplementedError

    def soft_bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any:  # fmt: skip
        raise NotImplementedError

    def blocked(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        """A refusal of the content or the sender, not of the address."""
        raise NotImplementedError

    def complaint(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                  ) -> Any:  # fmt: skip
        raise NotImplementedError

    def unsubscribe(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any | None:  # fmt: skip
        """The provider's unsubscribe record; None where it has none (SES)."""
        return None

    def delivery(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                 ) -> Any:  # fmt: skip
        raise NotImplementedError

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        raise NotImplementedError

    def click(self, reader: Subscriber, campaign_id: int | None, number: int, url: str) -> Any:
        raise NotImplementedError


class SendGridHook(Hook):
    """SendGrid posts batches of events, signed (ECDSA over timestamp + body); a record
    here is one event, posted as a batch of its own (a list: a batch as it is)."""

    name = "sendgrid"

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
            **_tags(reader, campaign_id),
            **extra,
        }

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


def figures(issue: IssueReport) -> tuple[Any, ...]:
    """A report's engagement figures of an issue: opens, readers who opened, clicks,
    readers who clicked, the top links with their clicks."""
    return (
        issue.opens,
        issue.unique_opens,
        issue.clicks,
        issue.unique_clicks,
        [(link.url, link.clicks) for link in issue.top_links],
    )


def _tags(reader: Subscriber, campaign_id: int | None) -> dict[str, str]:
    tags = {"subscriber_id": str(reader.id)}
    if campaign_id is not None:
        tags["campaign_id"] = str(campaign_id)
    return tags


class PostmarkHook(Hook):
    """Postmark posts one JSON record a request, with basic auth in the webhook URL."""

    name = "postmark"
    refused = 401
    unreadable = 400

    def post(self, record: Any, *, user: str = "postmark", password: str = POSTMARK_PASSWORD
             ) -> TestResponse:  # fmt: skip
        body = record if isinstance(record, bytes) else json.dumps(record).encode()
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        return self.client.post(
            "/webhooks/postmark",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Basic {credentials}"},
        )

    def forge(self, record: Any) -> TestResponse:
        return self.post(record, password="wrong")

    @staticmethod
    def bounce_record(reader: Subscriber, kind: str = "HardBounce", campaign_id: int | None = None,
                      number: int = 1, **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {
            "RecordType": "Bounce",
            "ID": 4323372036854775807 + number,
            "Type": kind,
            "TypeCode": 1,
            "MessageID": f"883953f4-6105-42a2-a16a-77a8eac7{number:04d}",
            "Description": "The server was unable to deliver your message (ex: unknown user).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": reader.email,
            "BouncedAt": "2026-12-07T04:00:00Z",
            "MessageStream": "broadcast",
            "Metadata": _tags(reader, campaign_id),
            **extra,
        }

    @staticmethod
    def change_record(reader: Subscriber, reason: str = "ManualSuppression",
                      campaign_id: int | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {
            "RecordType": "SubscriptionChange",
            "MessageID": "a4909a96-73d6-4c59-a5fc-6ac7ab7b1a7d",
            "ServerID": 23,
            "MessageStream": "broadcast",
            "ChangedAt": "2026-12-07T04:10:00Z",
            "Recipient": reader.email,
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": reason,
            "Metadata": _tags(reader, campaign_id),
            **extra,
        }

    def bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        return self.bounce_record(reader, "HardBounce", campaign_id, number)

    def soft_bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any:  # fmt: skip
        return self.bounce_record(reader, "SoftBounce", campaign_id, number)

    def blocked(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        return self.bounce_record(reader, "Blocked", campaign_id, number)

    def complaint(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                  ) -> Any:  # fmt: skip
        return {
            "RecordType": "SpamComplaint",
            "ID": 42 + number,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "MessageID": f"00000000-0000-0000-0000-00000000{number:04d}",
            "Email": reader.email,
            "MessageStream": "broadcast",
            "Metadata": _tags(reader, campaign_id),
        }

    def unsubscribe(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any | None:  # fmt: skip
        return self.change_record(reader, "ManualSuppression", campaign_id)

    def delivery(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                 ) -> Any:  # fmt: skip
        return {
            "RecordType": "Delivery",
            "MessageID": f"d-{number}",
            "Recipient": reader.email,
            "DeliveredAt": "2026-12-07T04:00:00Z",
            "Metadata": _tags(reader, campaign_id),
        }

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        return {
            "RecordType": "Open",
            "MessageStream": "broadcast",
            "Metadata": _tags(reader, campaign_id),
            "FirstOpen": number == 1,
            "Recipient": reader.email,
            "MessageID": f"883953f4-6105-42a2-a16a-{reader.id:012d}",
            "ReceivedAt": f"2026-12-07T05:{number // 60:02d}:{number % 60:02d}.1234567Z",
            "Platform": "WebMail",
            "ReadSeconds": 5,
            "Tag": "",
            "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            "OS": {"Name": "Windows 10", "Family": "Windows", "Company": "Microsoft"},
            "Client": {"Name": "Chrome 120", "Family": "Chrome", "Company": "Google"},
            "Geo": {"CountryISOCode": "NL", "Country": "Netherlands", "City": "Utrecht"},
        }

    def click(self, reader: Subscriber, campaign_id: int | None, number: int, url: str) -> Any:
        return {
            "RecordType": "Click",
            "MessageStream": "broadcast",
            "ClickLocation": "HTML",
            "Client": {"Name": "Chrome 120", "Family": "Chrome", "Company": "Google"},
            "OS": {"Name": "Windows 10", "Family": "Windows", "Company": "Microsoft"},
            "Platform": "Desktop",
            "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            "OriginalLink": url,
            "Geo": {"CountryISOCode": "NL", "Country": "Netherlands", "City": "Utrecht"},
            "MessageID": f"883953f4-6105-42a2-a16a-{reader.id:012d}",
            "Metadata": _tags(reader, campaign_id),
            "ReceivedAt": f"2026-12-07T06:{number // 60:02d}:{number % 60:02d}.7654321Z",
            "Tag": "",
            "Recipient": reader.email,
        }


class MailgunHook(Hook):
    """Mailgun posts ``{"signature": ..., "event-data": ...}``; each post here is signed
    afresh (a new token), as Mailgun signs each delivery of an event."""

    name = "mailgun"

    def post(self, record: Any) -> TestResponse:
        """Post ``record`` (an ``event-data``) signed afresh; bytes as they are."""
        return self.post_body(record if isinstance(record, bytes) else self.signed(record))

    def post_body(self, body: dict[str, Any] | bytes) -> TestResponse:
        """Post a whole body (``signature`` and ``event-data``) as it is."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post("/webhooks/mailgun", data=raw, content_type="application/json")

    def forge(self, record: Any) -> TestResponse:
        return self.post_body(self.signed(record, key="another key"))

    def bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        return self.event("failed", reader, campaign_id, number, severity="permanent",
                          reason="bounce")  # fmt: skip

    def soft_bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any:  # fmt: skip
        return self.event("failed", reader, campaign_id, number, severity="temporary",
                          reason="generic")  # fmt: skip

    def blocked(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        spam = {"code": 550, "message": "5.7.1 Message rejected as spam by Content Filtering"}
        return self.event("failed", reader, campaign_id, number, severity="permanent",
                          reason="generic", **{"delivery-status": spam})  # fmt: skip

    def complaint(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                  ) -> Any:  # fmt: skip
        return self.event("complained", reader, campaign_id, number)

    def unsubscribe(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any | None:  # fmt: skip
        return self.event("unsubscribed", reader, campaign_id, number)

    def delivery(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                 ) -> Any:  # fmt: skip
        return self.event("delivered", reader, campaign_id, number)

    @staticmethod
    def signed(data: dict[str, Any], *, key: str = MAILGUN_KEY, token: str | None = None,
               timestamp: int | None = None) -> dict[str, Any]:  # fmt: skip
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        token = token or secrets.token_hex(25)
        digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        return {"signature": {"timestamp": stamp, "token": token, "signature": digest},
                "event-data": data}  # fmt: skip

    @staticmethod
    def event(kind: str, reader: Subscriber, campaign_id: int | None, number: int,
              **extra: Any) -> dict[str, Any]:  # fmt: skip
        return {
            "event": kind,
            "id": f"G9Bn5sl1TC6nu79C8C0bwg-{kind}-{reader.id}-{number}",
            "timestamp": time.time(),
            "log-level": "info",
            "recipient": reader.email,
            "recipient-domain": reader.email.partition("@")[2],
            "message": {"headers": {"message-id": f"2026.{reader.id}@mg.example.org"}},
            "tags": [],
            "campaigns": [],
            "user-variables": _tags(reader, campaign_id),
            **extra,
        }

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        return self.event("opened", reader, campaign_id, number, **_mailgun_client())

    def click(self, reader: Subscriber, campaign_id: int | None, number: int, url: str) -> Any:
        return self.event("clicked", reader, campaign_id, number, url=url, **_mailgun_client())


def _mailgun_client() -> dict[str, Any]:
    return {
        "ip": "192.0.2.10",
        "geolocation": {"country": "NL", "region": "Utrecht", "city": "Utrecht"},
        "client-info": {
            "client-type": "browser",
            "client-os": "Windows",
            "device-type": "desktop",
            "client-name": "Chrome",
            "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
        },
    }


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
        tags = {name: [value] for name, value in _tags(reader, campaign_id).items()}
        return {
            "eventType": kind,
            "mail": {
                "timestamp": "2026-12-07T04:00:00.000Z",
                "source": "Newsletter <news@example.org>",
                "messageId": f"0102018c-ses-message-{reader.id}",
                "destination": [reader.email],
                "tags": tags,
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
