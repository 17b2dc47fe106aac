"""``POST /webhooks/ses``: SNS messages signed with a certificate the test makes, served
from 127.0.0.1 as SNS serves its own."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask
from werkzeug.test import TestResponse

from newsletter.config import Config
from newsletter.models import Subscriber
from newsletter.send.campaign_rows import start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import EXTENSION, Services
from newsletter.web.webhooks_ses import string_to_sign
from tests.fakes.sns import FakeSns
from tests.web.conftest import events_of

TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-events"


@pytest.fixture
def sns() -> Iterator[FakeSns]:
    fake = FakeSns()
    yield fake
    fake.close()


@pytest.fixture
def ses_app(web_config: Config, sns: FakeSns, make_app: Callable[..., Flask]) -> Flask:
    ses = web_config.ses.model_copy(update={"sns_topic_arns": [TOPIC], "sns_url_prefix": sns.url})
    return make_app(web_config.model_copy(update={"ses": ses}), {"TESTING": True})


@pytest.fixture
def site(ses_app: Flask) -> Services:
    return ses_app.extensions[EXTENSION]


@pytest.fixture
def subscriber(site: Services) -> Subscriber:
    return site.store.add("ada@example.org", name="Ada Lovelace", topics=("research",), source="t")


@pytest.fixture
def post(ses_app: Flask) -> Callable[[dict[str, str] | bytes], TestResponse]:
    client = ses_app.test_client()

    def post(message: dict[str, str] | bytes) -> TestResponse:
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        kind = "" if isinstance(message, bytes) else message.get("Type", "")
        return client.post(
            "/webhooks/ses",
            data=body,
            content_type="text/plain; charset=UTF-8",
            headers={"x-amz-sns-message-type": kind},
        )

    return post


def notification(event: dict[str, Any], *, message_id: str | None = None) -> dict[str, str]:
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": json.dumps(event),
        "Timestamp": "2026-12-07T04:30:00.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_event(kind: str, subscriber: Subscriber, campaign_id: int | None = None,
              **detail: Any) -> dict[str, Any]:  # fmt: skip
    tags = {"subscriber_id": [str(subscriber.id)]}
    if campaign_id is not None:
        tags["campaign_id"] = [str(campaign_id)]
    event: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "messageId": "0102018c-ses-message-id",
            "destination": [subscriber.email],
            "tags": tags,
        },
    }
    if kind == "Bounce":
        event["bounce"] = {
            "bounceType": detail.get("bounce_type", "Permanent"),
            "bounceSubType": detail.get("sub_type", "General"),
            "bouncedRecipients": [{"emailAddress": subscriber.email}],
        }
    if kind == "Complaint":
        event["complaint"] = {
            "complainedRecipients": [{"emailAddress": subscriber.email}],
            "complaintFeedbackType": detail.get("feedback", "abuse"),
        }
    return event


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("kind", "detail", "status"),
    [
        ("Bounce", {}, "bounced"),
        ("Bounce", {"bounce_type": "Transient"}, "active"),
        ("Complaint", {}, "complained"),
        ("Complaint", {"feedback": "not-spam"}, "active"),
        ("Delivery", {}, "active"),
    ],
)
@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_notifications_change_the_subscriber(
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber, kind: str,
    detail: dict[str, str], status: str, version: str,
) -> None:  # fmt: skip
    response = post(sns.sign(notification(ses_event(kind, subscriber, **detail)), version=version))

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


def test_a_complaint_is_never_downgraded_and_a_retried_message_counts_once(
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber
) -> None:
    complaint = sns.sign(notification(ses_event("Complaint", subscriber)))
    assert post(complaint).status_code == 200
    before = events_of(site, subscriber.id)

    assert post(sns.sign(notification(ses_event("Bounce", subscriber)))).status_code == 200
    assert post(complaint).status_code == 200  # SNS's retry

    assert status_of(site, subscriber) == "complained"
    assert events_of(site, subscriber.id) == before


def test_notifications_settle_the_campaigns_unknown_rows(
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber
) -> None:
    bob = site.store.add("bob@example.org", source="test")
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider="ses",
    )  # fmt: skip
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()

    post(sns.sign(notification(ses_event("Delivery", subscriber, campaign.id))))
    post(sns.sign(notification(ses_event("Bounce", bob, campaign.id))))

    counts = state_counts(site.store, campaign.id)
    assert (counts["sent"], counts["failed"], counts["unknown"]) == (1, 1, 0)
    assert status_of(site, bob) == "bounced"


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("Bounce", {"bounce_type": "Transient", "sub_type": "ContentRejected"}),
        ("Bounce", {"bounce_type": "Transient", "sub_type": "AttachmentRejected"}),
        ("Reject", {}),
    ],
)
def test_a_refused_content_fails_the_copy_as_blocked_and_suppresses_no_one(
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber, kind: str,
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
    assert post(sns.sign(notification(event))).status_code == 200

    assert state_counts(site.store, campaign.id)["failed"] == 1
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)


def test_a_subscription_is_confirmed_through_its_subscribe_url(post: Any, sns: FakeSns) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e2425",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic. To confirm, visit the URL.",
        "SubscribeURL": sns.url + "confirm?Action=ConfirmSubscription&Token=2336412f37fb",
        "Timestamp": "2026-12-07T04:30:00.000Z",
    }

    response = post(sns.sign(confirmation))

    assert response.status_code == 200
    assert sns.confirmed == ["/confirm?Action=ConfirmSubscription&Token=2336412f37fb"]


def test_a_subscribe_url_elsewhere_is_never_fetched(post: Any, sns: FakeSns) -> None:
    confirmation = {
        "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t", "TopicArn": TOPIC,
        "Message": "m", "SubscribeURL": "http://127.0.0.2:1/confirm", "Timestamp": "x",
    }  # fmt: skip

    assert post(sns.sign(confirmation)).status_code == 403
    assert sns.confirmed == []


def test_a_get_does_nothing(ses_app: Flask, sns: FakeSns) -> None:
    assert ses_app.test_client().get("/webhooks/ses").status_code == 405
    assert sns.confirmed == []


@pytest.mark.parametrize(
    "forge",
    [
        # Signed by someone else's key.
        lambda sns, message: {**sns.sign(message), "Signature": base64.b64encode(
            rsa.generate_private_key(public_exponent=65537, key_size=2048).sign(
                string_to_sign(message).encode(), padding.PKCS1v15(), hashes.SHA1()
            )).decode()},
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
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber, forge: Any
) -> None:
    message = notification(ses_event("Delivery", subscriber))

    response = post(forge(sns, message))

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


@pytest.mark.parametrize("body", [b"not json", b"[" * 100_000, b'{"Type": 1}'])
def test_a_body_that_is_not_an_sns_message_is_refused(post: Any, body: bytes) -> None:
    assert post(body).status_code == 403


def test_without_trusted_topics_every_message_is_refused(
    web_config: Config, sns: FakeSns, make_app: Callable[..., Flask], subscriber: Subscriber
) -> None:
    app = make_app(web_config, {"TESTING": True})
    message = sns.sign(notification(ses_event("Complaint", subscriber)))

    response = app.test_client().post("/webhooks/ses", data=json.dumps(message))

    assert response.status_code == 403


def test_unsigned_message_attributes_are_ignored_not_refused(
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber
) -> None:
    signed = sns.sign(notification(ses_event("Complaint", subscriber)))
    signed["MessageAttributes"] = {"source": {"Type": "String", "Value": "ses"}}

    assert post(signed).status_code == 200
    assert status_of(site, subscriber) == "complained"


def test_the_certificate_is_fetched_once_per_url(
    post: Any, sns: FakeSns, subscriber: Subscriber
) -> None:
    signed = sns.sign(notification(ses_event("Delivery", subscriber)))
    post(signed)
    post({**signed})

    assert sns.certificate_fetches == 1


def test_a_notification_that_fails_halfway_is_applied_by_snss_retry(
    post: Any, sns: FakeSns, site: Services, subscriber: Subscriber,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    signed = sns.sign(notification(ses_event("Complaint", subscriber)))

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as broken:
        broken.setattr("newsletter.send.provider_events.change_statuses", killed)
        assert post(signed).status_code == 500
    assert status_of(site, subscriber) == "active"

    assert post(signed).status_code == 200  # SNS retries the same message
    assert status_of(site, subscriber) == "complained"
