"""``POST /webhooks/mailgun``: signed events, fresh timestamps, each token used once."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
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

SIGNING_KEY = "mailgun-webhook-signing-key-for-tests"


def signed(data: dict[str, Any], *, key: str = SIGNING_KEY, token: str | None = None,
           timestamp: int | None = None) -> dict[str, Any]:  # fmt: skip
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": stamp, "token": token, "signature": digest},
            "event-data": data}  # fmt: skip


@pytest.fixture
def post(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", SIGNING_KEY)

    def post(body: dict[str, Any] | bytes) -> TestResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.post("/webhooks/mailgun", data=raw, content_type="application/json")

    return post


def event(kind: str, subscriber: Subscriber, number: int = 1, campaign_id: int | None = None,
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    variables = {"subscriber_id": str(subscriber.id)}
    if campaign_id is not None:
        variables["campaign_id"] = str(campaign_id)
    return {
        "event": kind,
        "id": f"G9Bn5sl1TC6nu79C8C0bwg-{kind}-{number}",
        "timestamp": time.time(),
        "recipient": subscriber.email,
        "message": {"headers": {"message-id": f"2026.{number}@mg.example.org"}},
        "user-variables": variables,
        **extra,
    }


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("kind", "extra", "status"),
    [
        ("failed", {"severity": "permanent", "reason": "bounce"}, "bounced"),
        ("failed", {"severity": "permanent", "reason": "suppress-bounce"}, "bounced"),
        ("failed", {"severity": "permanent", "reason": "suppress-unsubscribe"}, "unsubscribed"),
        ("failed", {"severity": "permanent", "reason": "suppress-complaint"}, "complained"),
        ("failed", {"severity": "temporary", "reason": "generic"}, "active"),
        ("complained", {}, "complained"),
        ("unsubscribed", {}, "unsubscribed"),
        ("delivered", {}, "active"),
        ("opened", {}, "active"),
    ],
)
def test_events_change_the_subscriber(
    post: Any, site: Services, subscriber: Subscriber, kind: str, extra: dict[str, Any],
    status: str,
) -> None:  # fmt: skip
    response = post(signed(event(kind, subscriber, **extra)))

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


def test_an_unsubscribe_is_recorded_as_mailguns(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    post(signed(event("unsubscribed", subscriber)))

    [*_, last] = events_of(site, subscriber.id)
    assert last["source"] == "mailgun"


def test_a_complaint_is_never_downgraded_and_a_resent_event_counts_once(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    assert post(signed(event("complained", subscriber))).status_code == 200
    before = events_of(site, subscriber.id)

    bounce = event("failed", subscriber, 2, severity="permanent", reason="bounce")
    assert post(signed(bounce)).status_code == 200
    assert post(signed(event("unsubscribed", subscriber, 3))).status_code == 200
    assert post(signed(event("complained", subscriber))).status_code == 200  # new token

    assert status_of(site, subscriber) == "complained"
    assert events_of(site, subscriber.id) == before


def test_a_replayed_token_is_refused(post: Any, site: Services, subscriber: Subscriber) -> None:
    first = signed(event("delivered", subscriber))
    assert post(first).status_code == 200

    replay = signed(event("complained", subscriber), token=first["signature"]["token"])
    response = post(replay)

    assert response.status_code == 406
    assert status_of(site, subscriber) == "active"


def test_events_settle_the_campaigns_unknown_rows(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    bob = site.store.add("bob@example.org", source="test")
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider="mailgun",
    )  # fmt: skip
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()

    post(signed(event("delivered", subscriber, 1, campaign.id)))
    post(signed(event("failed", bob, 2, campaign.id, severity="permanent", reason="bounce")))

    counts = state_counts(site.store, campaign.id)
    assert (counts["sent"], counts["failed"], counts["unknown"]) == (1, 1, 0)
    assert status_of(site, bob) == "bounced"


def test_a_policy_block_fails_the_copy_as_blocked_and_a_bad_address_still_bounces(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    bob = site.store.add("bob@example.org", source="test")
    campaign = start_campaign(
        site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider="mailgun",
    )  # fmt: skip
    ledger = Ledger(site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()
    spam = {"code": 550, "message": "5.7.1 Message rejected as spam by Content Filtering"}
    unknown = {"code": 550, "message": "5.1.1 The email account does not exist"}

    post(signed(event("failed", subscriber, 1, campaign.id, severity="permanent",
                      reason="generic", **{"delivery-status": spam})))  # fmt: skip
    post(signed(event("failed", bob, 2, campaign.id, severity="permanent",
                      reason="bounce", **{"delivery-status": unknown})))  # fmt: skip

    assert state_counts(site.store, campaign.id)["failed"] == 2
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)
    assert status_of(site, bob) == "bounced"


@pytest.mark.parametrize(
    "forge",
    [
        lambda data: signed(data, key="another key"),
        lambda data: signed(data, timestamp=int(time.time()) - 3600),
        lambda data: {**signed(data), "signature": {"timestamp": "1", "token": "t"}},
        lambda data: {"event-data": data},
        lambda data: b"not json",
        lambda data: b"[" * 100_000,
    ],
)
def test_unsigned_forged_or_stale_requests_are_refused(
    post: Any, site: Services, subscriber: Subscriber, forge: Any
) -> None:
    response = post(forge(event("complained", subscriber)))

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_changed_body_fails_nothing_but_the_signature_is_over_the_token(
    post: Any, site: Services, subscriber: Subscriber
) -> None:
    # Mailgun signs timestamp + token only; the event id makes a resent event count once.
    body = signed(event("failed", subscriber, severity="permanent", reason="bounce"))
    assert post(body).status_code == 200
    again = signed(event("failed", subscriber, severity="permanent", reason="bounce"))
    assert post(again).status_code == 200

    assert len([e for e in events_of(site, subscriber.id) if e["source"] == "provider"]) == 1


def test_without_a_signing_key_every_request_is_refused(
    post: Any, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILGUN_WEBHOOK_SIGNING_KEY")

    assert post(signed(event("complained", subscriber))).status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_signed_body_without_event_data_is_a_400(post: Any) -> None:
    body = signed({})
    body["event-data"] = ["x"]
    assert post(body).status_code == 400


def test_a_request_that_fails_halfway_leaves_its_token_for_mailguns_retry(
    post: Any, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = signed(event("complained", subscriber))

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as broken:
        broken.setattr("newsletter.send.provider_events.change_statuses", killed)
        assert post(body).status_code == 500
    assert status_of(site, subscriber) == "active"  # nothing of it committed

    assert post(body).status_code == 200  # Mailgun's retry: same token, same event
    assert status_of(site, subscriber) == "complained"
