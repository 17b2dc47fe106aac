"""``POST /webhooks/postmark``: Postmark's records behind basic auth, applied once each."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from newsletter.send.campaign_rows import start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import Services
from tests.web.conftest import events_of

PASSWORD = "postmark-webhook-password-for-tests"


@pytest.fixture
def post(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POSTMARK_WEBHOOK_PASSWORD", PASSWORD)

    def post(
        record: dict[str, Any] | bytes, *, user: str = "postmark", password: str = PASSWORD
    ) -> TestResponse:
        body = record if isinstance(record, bytes) else json.dumps(record).encode()
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        return client.post(
            "/webhooks/postmark",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Basic {credentials}"},
        )

    return post


def metadata(subscriber: Subscriber, campaign_id: int | None = None) -> dict[str, str]:
    tags = {"subscriber_id": str(subscriber.id)}
    if campaign_id is not None:
        tags["campaign_id"] = str(campaign_id)
    return tags


def bounce(
    subscriber: Subscriber, kind: str = "HardBounce", number: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807 + number,
        "Type": kind,
        "TypeCode": 1,
        "MessageID": f"883953f4-6105-42a2-a16a-77a8eac7{number:04d}",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": subscriber.email,
        "BouncedAt": "2026-12-07T04:00:00Z",
        "MessageStream": "broadcast",
        "Metadata": metadata(subscriber),
        **extra,
    }


def complaint(subscriber: Subscriber, number: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "RecordType": "SpamComplaint",
        "ID": 42 + number,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "MessageID": f"00000000-0000-0000-0000-00000000{number:04d}",
        "Email": subscriber.email,
        "MessageStream": "broadcast",
        "Metadata": metadata(subscriber),
        **extra,
    }


def change(
    subscriber: Subscriber, reason: str = "ManualSuppression", **extra: Any
) -> dict[str, Any]:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": "a4909a96-73d6-4c59-a5fc-6ac7ab7b1a7d",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2026-12-07T04:10:00Z",
        "Recipient": subscriber.email,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": reason,
        "Metadata": metadata(subscriber),
        **extra,
    }


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("record", "status"),
    [
        (lambda s: bounce(s), "bounced"),
        (lambda s: bounce(s, "BadEmailAddress"), "bounced"),
        (lambda s: bounce(s, "SoftBounce"), "active"),
        (lambda s: bounce(s, "Blocked"), "active"),
        (lambda s: bounce(s, "SpamComplaint"), "complained"),
        (lambda s: complaint(s), "complained"),
        (lambda s: change(s), "unsubscribed"),
        (lambda s: change(s, "HardBounce"), "bounced"),
        (lambda s: change(s, "SpamComplaint"), "complained"),
        (lambda s: change(s, SuppressSending=False), "active"),
    ],
)
def test_records_change_the_subscriber(
    post: Any, site: Services, subscriber: Subscriber, record: Any, status: str
) -> None:
    response = post(record(subscriber))

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


def test_an_unsubscribe_is_recorded_as_postmarks(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    post(change(subscriber))

    [*_, last] = events_of(site, subscriber.id)
    assert last["source"] == "postmark"


def test_a_complaint_is_never_downgraded_and_a_retried_record_counts_once(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    assert post(complaint(subscriber)).status_code == 200
    before = events_of(site, subscriber.id)

    assert post(bounce(subscriber)).status_code == 200
    assert post(change(subscriber)).status_code == 200
    assert post(complaint(subscriber)).status_code == 200  # Postmark's retry

    assert status_of(site, subscriber) == "complained"
    assert events_of(site, subscriber.id) == before


def test_records_settle_the_campaigns_unknown_rows(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    bob = site.store.add("bob@example.org", source="test")
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider="postmark",
    )  # fmt: skip
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()  # the sender died with the batch out: both rows are unknown

    delivery = {
        "RecordType": "Delivery",
        "MessageID": "d-1",
        "Recipient": subscriber.email,
        "DeliveredAt": "2026-12-07T04:00:00Z",
        "Metadata": metadata(subscriber, campaign.id),
    }
    assert post(delivery).status_code == 200
    assert post(bounce(bob, Metadata=metadata(bob, campaign.id))).status_code == 200

    counts = state_counts(site.store, campaign.id)
    assert (counts["sent"], counts["failed"], counts["unknown"]) == (1, 1, 0)
    assert status_of(site, bob) == "bounced"


@pytest.mark.parametrize("kind", ["Blocked", "DMARCPolicy"])
def test_a_policy_block_fails_the_copy_as_blocked_and_suppresses_no_one(
    post: Any, site: Services, subscriber: Subscriber, kind: str
) -> None:
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider="postmark",
    )  # fmt: skip
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()

    record = bounce(subscriber, kind, Metadata=metadata(subscriber, campaign.id))
    assert post(record).status_code == 200

    assert state_counts(site.store, campaign.id)["failed"] == 1
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)


@pytest.mark.parametrize(
    ("user", "password"), [("postmark", "wrong"), ("someone", PASSWORD), ("", "")]
)
def test_wrong_credentials_are_refused(
    post: Any, site: Services, subscriber: Subscriber, user: str, password: str
) -> None:
    response = post(complaint(subscriber), user=user, password=password)

    assert response.status_code == 401
    assert status_of(site, subscriber) == "active"


def test_without_a_password_set_every_request_is_refused(
    post: Any, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTMARK_WEBHOOK_PASSWORD")

    assert post(complaint(subscriber)).status_code == 403
    assert status_of(site, subscriber) == "active"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"[" * 100_000])
def test_a_body_that_is_not_a_record_is_a_400(post: Any, body: bytes) -> None:
    assert post(body).status_code == 400


def test_values_of_the_wrong_type_are_ignored_not_a_500(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    record = bounce(subscriber, Metadata={"subscriber_id": ["x"]}, ID={"a": 1}, Email=7)

    assert post(record).status_code == 200
    assert status_of(site, subscriber) == "active"


def test_a_record_that_fails_halfway_is_applied_by_postmarks_retry(
    post: Any, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as broken:
        broken.setattr("newsletter.send.provider_events.change_statuses", killed)
        assert post(complaint(subscriber)).status_code == 500
    assert status_of(site, subscriber) == "active"  # nothing of it committed, its id neither

    assert post(complaint(subscriber)).status_code == 200
    assert status_of(site, subscriber) == "complained"
