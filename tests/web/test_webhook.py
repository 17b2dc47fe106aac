"""``POST /webhooks/sendgrid``: the Signed Event Webhook, applied once per event: what
only SendGrid's does (its event kinds and drop reasons, batches, the signature's
header and timestamp); what every provider's does is in test_webhook_contract.py."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sendgrid.helpers.eventwebhook import EventWebhook

from newsletter.models import Subscriber
from newsletter.send.campaign_rows import reactions, start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import EXTENSION, Services
from newsletter.web.signature import verify_signature
from tests.web.conftest import Webhook, events_of, public_key_text


def event(kind: str, subscriber: Subscriber, number: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "email": subscriber.email,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": f"event-{kind}-{number}",
        "sg_message_id": f"message-{number}.filter0001",
        "subscriber_id": str(subscriber.id),
        **extra,
    }


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("kind", "extra", "status"),
    [
        ("dropped", {"reason": "Bounced Address"}, "bounced"),
        ("dropped", {"reason": "Spam Reporting Address"}, "complained"),
        ("group_unsubscribe", {"asm_group_id": 42}, "unsubscribed"),
        ("dropped", {"reason": "Invalid SMTPAPI header"}, "active"),
        ("group_resubscribe", {"asm_group_id": 42}, "active"),
    ],
)
def test_events_change_the_subscriber(
    webhook: Webhook,
    site: Services,
    subscriber: Subscriber,
    kind: str,
    extra: dict[str, Any],
    status: str,
) -> None:
    response = webhook([event(kind, subscriber, **extra)])

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


@pytest.mark.parametrize(
    ("before", "kind", "extra"),
    [
        ("complained", "bounce", {"type": "bounce", "reason": "550 5.1.1 no such user"}),
        ("complained", "dropped", {"reason": "Bounced Address"}),
        ("complained", "unsubscribe", {}),
        ("bounced", "unsubscribe", {}),
        ("bounced", "group_unsubscribe", {"asm_group_id": 42}),
    ],
)
def test_a_weaker_report_never_overwrites_a_stronger_status(
    webhook: Webhook,
    site: Services,
    subscriber: Subscriber,
    before: str,
    kind: str,
    extra: dict[str, Any],
) -> None:
    site.store.mark(subscriber.id, before)  # type: ignore[arg-type]
    history = events_of(site, subscriber.id)

    response = webhook([event(kind, subscriber, **extra)])

    assert response.status_code == 200
    assert status_of(site, subscriber) == before
    assert events_of(site, subscriber.id) == history


def test_a_retried_event_is_applied_once(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    unsubscribe = event("unsubscribe", subscriber)
    first = webhook([unsubscribe])
    assert status_of(site, subscriber) == "unsubscribed"
    # The reader changes their mind; then SendGrid retries the old batch.
    site.store.resubscribe(subscriber.id, source="preference-center")
    retried = webhook([unsubscribe, unsubscribe])

    assert first.status_code == retried.status_code == 200
    assert status_of(site, subscriber) == "active"
    history = [e["event"] for e in events_of(site, subscriber.id)]
    assert history == ["unsubscribed", "resubscribed"]


def test_an_unknown_subscriber_is_skipped_and_the_batch_accepted(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    stranger = Subscriber(id=999, email="stranger@example.org", name="", status="active")

    response = webhook([event("bounce", stranger, 1), event("spamreport", subscriber, 2)])

    assert response.status_code == 200
    assert site.store.find("stranger@example.org") is None
    assert status_of(site, subscriber) == "complained"


def test_an_echoed_id_of_someone_else_falls_back_to_the_address(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    other = site.store.add("bob@example.org", source="test")

    webhook([event("spamreport", subscriber, subscriber_id=str(other.id))])

    assert status_of(site, subscriber) == "complained"
    assert status_of(site, other) == "active"


def test_a_batch_of_a_blocked_and_a_hard_bounce_fails_both_copies_one_as_blocked(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    bob = site.store.add("bob@example.org", source="test")
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="i.md", subject="S", topics=(), provider="sendgrid"
    )
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()

    response = webhook(
        [
            event("bounce", subscriber, 1, campaign_id=str(campaign.id), type="blocked",
                  reason="550 5.7.1 Message rejected as spam by Content Filtering"),
            event("bounce", bob, 2, campaign_id=str(campaign.id), type="bounce"),
        ]
    )  # fmt: skip

    assert response.status_code == 200
    assert state_counts(site.store, campaign.id)["failed"] == 2
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)
    assert status_of(site, bob) == "bounced"


@pytest.mark.parametrize(
    "signature", ["", "not base64!", base64.b64encode(b"\x30\x02\x01\x01").decode()]
)
def test_a_missing_or_malformed_signature_is_refused(
    webhook: Webhook, site: Services, subscriber: Subscriber, signature: str
) -> None:
    response = webhook([event("spamreport", subscriber)], signature=signature)

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_body_changed_after_signing_is_refused(
    app: Flask,
    webhook_private_key: ec.EllipticCurvePrivateKey,
    site: Services,
    subscriber: Subscriber,
) -> None:
    stamp = str(int(time.time()))
    signed_body = json.dumps([event("delivered", subscriber)]).encode()
    signature = webhook_private_key.sign(stamp.encode() + signed_body, ec.ECDSA(hashes.SHA256()))
    sent_body = json.dumps([event("spamreport", subscriber)]).encode()

    response = app.test_client().post(
        "/webhooks/sendgrid",
        data=sent_body,
        content_type="application/json",
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_stale_timestamp_is_refused_even_when_signed(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    an_hour_ago = int(time.time()) - 3600

    response = webhook([event("spamreport", subscriber)], timestamp=an_hour_ago)

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_signed_body_that_is_not_an_event_list_is_a_400(webhook: Webhook) -> None:
    assert webhook(b"{not json").status_code == 400
    assert webhook(b'{"event": "bounce"}').status_code == 400


def test_verification_agrees_with_the_sendgrid_library(
    app: Flask, webhook_private_key: ec.EllipticCurvePrivateKey
) -> None:
    public_key = app.extensions[EXTENSION].webhook_key
    library = EventWebhook(public_key_text(webhook_private_key))
    body = '[{"email":"ada@example.org","event":"delivered"}]\r\n'
    stamp = "1600112502"
    good = base64.b64encode(
        webhook_private_key.sign((stamp + body).encode(), ec.ECDSA(hashes.SHA256()))
    ).decode()
    bad = base64.b64encode(
        ec.generate_private_key(ec.SECP256R1()).sign(
            (stamp + body).encode(), ec.ECDSA(hashes.SHA256())
        )
    ).decode()

    for signature, expected in ((good, True), (bad, False)):
        assert library.verify_signature(body, signature, stamp) is expected
        ours = verify_signature(
            public_key, body=body.encode(), signature=signature, timestamp=stamp
        )
        assert ours is expected


def test_opens_and_clicks_are_not_counted_without_tracking(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    response = webhook(
        [
            event("open", subscriber, 1, campaign_id="5"),
            event("click", subscriber, 2, campaign_id="5"),
        ]
    )

    assert response.status_code == 200
    assert reactions(site.store, 5) == {"unsubscribed": 0, "open": 0, "click": 0}


def test_opens_and_clicks_are_counted_when_tracking_is_on(
    webhook: Webhook, site: Services, subscriber: Subscriber
) -> None:
    site.events.tracked_by = frozenset({"sendgrid"})  # as with sendgrid.tracking: true

    webhook(
        [
            event("open", subscriber, 1, campaign_id="5"),
            event("open", subscriber, 2, campaign_id="5"),
            event("click", subscriber, 3, campaign_id="5", url="https://example.org"),
            event("open", subscriber, 4, campaign_id="6"),
        ]
    )

    assert reactions(site.store, 5) == {"unsubscribed": 0, "open": 2, "click": 1}
    assert status_of(site, subscriber) == "active"
