"""Mailgun's ``event-data``, signed with a fresh timestamp and token."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from tests.web.hooks.base import MAILGUN_KEY, Hook, tags


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
            "user-variables": tags(reader, campaign_id),
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
