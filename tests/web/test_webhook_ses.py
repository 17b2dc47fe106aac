"""``POST /webhooks/ses``: what only SES's webhook does: SNS messages signed with a
certificate the test makes, served from 127.0.0.1 as SNS serves its own (both signature
versions, the certificate's host, the topic), the subscription confirmed, SES's event
types; what every provider's does is in test_webhook_contract.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from newsletter.models import Subscriber
from newsletter.send.campaign_rows import start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import Services
from tests.web.hooks import SES_TOPIC, SesHook

TOPIC = SES_TOPIC


@pytest.fixture
def hook(make_hook: Callable[..., SesHook]) -> SesHook:
    return make_hook("ses")


@pytest.fixture
def site(hook: SesHook) -> Services:
    return hook.site


def ses_event(kind: str, subscriber: Subscriber, campaign_id: int | None = None,
              **detail: Any) -> dict[str, Any]:  # fmt: skip
    if kind == "Bounce":
        return SesHook.bounce_event(
            subscriber, campaign_id, detail.get("bounce_type", "Permanent"),
            detail.get("sub_type", "General"),
        )  # fmt: skip
    if kind == "Complaint":
        return SesHook.complaint_event(subscriber, campaign_id, detail.get("feedback", "abuse"))
    return SesHook.event(kind, subscriber, campaign_id)


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("kind", "detail", "status", "version"),
    [
        ("Bounce", {}, "bounced", "2"),
        ("Bounce", {"bounce_type": "Transient"}, "active", "2"),
        ("Complaint", {}, "complained", "2"),
        ("Complaint", {"feedback": "not-spam"}, "active", "1"),
        ("Complaint", {"feedback": "not-spam"}, "active", "2"),
        ("Delivery", {}, "active", "2"),
    ],
)
def test_signed_notifications_change_the_subscriber(
    hook: SesHook, site: Services, subscriber: Subscriber, kind: str,
    detail: dict[str, str], status: str, version: str,
) -> None:  # fmt: skip
    notification = hook.notification(ses_event(kind, subscriber, **detail), version=version)

    assert hook.post(notification).status_code == 200
    assert status_of(site, subscriber) == status


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("Bounce", {"bounce_type": "Transient", "sub_type": "AttachmentRejected"}),
        ("Reject", {}),
    ],
)
def test_a_refused_content_fails_the_copy_as_blocked_and_suppresses_no_one(
    hook: SesHook, site: Services, subscriber: Subscriber, kind: str,
    detail: dict[str, str],
) -> None:  # fmt: skip
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider="ses",
    )  # fmt: skip
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()

    event = ses_event(kind, subscriber, campaign.id, **detail)
    assert hook.post(hook.notification(event)).status_code == 200

    assert state_counts(site.store, campaign.id)["failed"] == 1
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)


def test_a_subscription_is_confirmed_through_its_subscribe_url(hook: SesHook) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm, visit the URL.",
        "SubscribeURL": hook.sns.url + "confirm?Action=ConfirmSubscription&Token=2336412f37fb",
        "Timestamp": "2026-12-07T04:30:00.000Z",
    }

    response = hook.post(hook.sns.sign(confirmation))

    assert response.status_code == 200
    assert hook.sns.confirmed == ["/confirm?Action=ConfirmSubscription&Token=2336412f37fb"]


def test_a_subscribe_url_elsewhere_is_never_fetched(hook: SesHook) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t", "TopicArn": TOPIC,
        "Message": "m", "SubscribeURL": "http://127.0.0.2:1/confirm", "Timestamp": "x",
    }  # fmt: skip

    assert hook.post(hook.sns.sign(confirmation)).status_code == 403
    assert hook.sns.confirmed == []


def test_a_get_does_nothing(hook: SesHook) -> None:
    assert hook.client.get("/webhooks/ses").status_code == 405
    assert hook.sns.confirmed == []


@pytest.mark.parametrize(
    "forge",
    [
        # The body changed after signing.
        lambda sns, message: {**sns.sign(message), "Message": message["Message"].replace(
            "Delivery", "Complaint")},
        # A certificate from anywhere but the SNS host.
        lambda sns, message: {**sns.sign(message),
                              "SigningCertURL": "http://127.0.0.2:1/cert.pem"},
        # Another topic (a stranger's, signed by SNS all the same).
        lambda sns, message: sns.sign({**message, "TopicArn": TOPIC.replace("123", "999")}),
        lambda sns, message: {**sns.sign(message), "SignatureVersion": "3"},
        lambda sns, message: {k: v for k, v in sns.sign(message).items() if k != "Signature"},
    ],
)  # fmt: skip
def test_unsigned_forged_or_foreign_messages_are_refused(
    hook: SesHook, site: Services, subscriber: Subscriber, forge: Any
) -> None:
    message = hook.unsigned(ses_event("Delivery", subscriber))

    response = hook.post(forge(hook.sns, message))

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_body_that_is_not_an_sns_message_is_refused(hook: SesHook) -> None:
    assert hook.post(b'{"Type": 1}').status_code == 403


def test_unsigned_message_attributes_are_ignored_not_refused(
    hook: SesHook, site: Services, subscriber: Subscriber
) -> None:
    signed = hook.notification(ses_event("Complaint", subscriber))
    signed["MessageAttributes"] = {"source": {"Type": "String", "Value": "ses"}}  # type: ignore[assignment]

    assert hook.post(signed).status_code == 200
    assert status_of(site, subscriber) == "complained"


def test_the_certificate_is_fetched_once_per_url(hook: SesHook, subscriber: Subscriber) -> None:
    signed = hook.notification(ses_event("Delivery", subscriber))
    hook.post(signed)
    hook.post({**signed})

    assert hook.sns.certificate_fetches == 1
