"""Postmark's records, posted with basic auth."""

from __future__ import annotations

import base64
import json
from typing import Any

from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from tests.web.hooks.base import POSTMARK_PASSWORD, Hook, tags


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
            "Metadata": tags(reader, campaign_id),
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
            "Metadata": tags(reader, campaign_id),
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
            "Metadata": tags(reader, campaign_id),
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
            "Metadata": tags(reader, campaign_id),
        }

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        return {
            "RecordType": "Open",
            "MessageStream": "broadcast",
            "Metadata": tags(reader, campaign_id),
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
            "Metadata": tags(reader, campaign_id),
            "ReceivedAt": f"2026-12-07T06:{number // 60:02d}:{number % 60:02d}.7654321Z",
            "Tag": "",
            "Recipient": reader.email,
        }
