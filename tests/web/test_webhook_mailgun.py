"""``POST /webhooks/mailgun``: what only Mailgun's webhook does (its suppression reasons,
its signed timestamp and one-time token); what every provider's does is in
test_webhook_contract.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from newsletter.models import Subscriber
from newsletter.send.campaign_rows import start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import Services
from tests.web.conftest import events_of
from tests.web.hooks import MailgunHook

signed = MailgunHook.signed


def event(kind: str, subscriber: Subscriber, number: int = 1, campaign_id: int | None = None,
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    return MailgunHook.event(kind, subscriber, campaign_id, number, **extra)


@pytest.fixture
def hook(make_hook: Callable[..., MailgunHook]) -> MailgunHook:
    return make_hook("mailgun")


@pytest.fixture
def site(hook: MailgunHook) -> Services:
    return hook.site


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("kind", "extra", "status"),
    [
        ("failed", {"severity": "permanent", "reason": "suppress-bounce"}, "bounced"),
        ("failed", {"severity": "permanent", "reason": "suppress-unsubscribe"}, "unsubscribed"),
        ("failed", {"severity": "permanent", "reason": "suppress-complaint"}, "complained"),
        ("opened", {}, "active"),
    ],
)
def test_events_change_the_subscriber(
    hook: MailgunHook, site: Services, subscriber: Subscriber, kind: str, extra: dict[str, Any],
    status: str,
) -> None:  # fmt: skip
    response = hook.post(event(kind, subscriber, **extra))

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


def test_a_replayed_token_is_refused(
    hook: MailgunHook, site: Services, subscriber: Subscriber
) -> None:
    first = signed(event("delivered", subscriber))
    assert hook.post_body(first).status_code == 200

    replay = signed(event("complained", subscriber), token=first["signature"]["token"])
    response = hook.post_body(replay)

    assert response.status_code == 406
    assert status_of(site, subscriber) == "active"


def test_a_refusal_about_the_address_bounces_though_another_reply_is_a_block(
    hook: MailgunHook, site: Services, subscriber: Subscriber
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
    unknown = {"code": 550, "message": "5.1.1 The email account does not exist"}

    hook.post(hook.blocked(subscriber, campaign.id))
    hook.post(event("failed", bob, 2, campaign.id, severity="permanent",
                    reason="bounce", **{"delivery-status": unknown}))  # fmt: skip

    assert state_counts(site.store, campaign.id)["failed"] == 2
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)
    assert status_of(site, bob) == "bounced"


@pytest.mark.parametrize(
    "forge",
    [
        lambda data: signed(data, timestamp=int(time.time()) - 3600),
        lambda data: {**signed(data), "signature": {"timestamp": "1", "token": "t"}},
        lambda data: {"event-data": data},
    ],
)
def test_unsigned_or_stale_requests_are_refused(
    hook: MailgunHook, site: Services, subscriber: Subscriber, forge: Any
) -> None:
    response = hook.post_body(forge(event("complained", subscriber)))

    assert response.status_code == 403
    assert status_of(site, subscriber) == "active"


def test_a_changed_body_fails_nothing_but_the_signature_is_over_the_token(
    hook: MailgunHook, site: Services, subscriber: Subscriber
) -> None:
    # Mailgun signs timestamp + token only; the event id makes a resent event count once.
    body = signed(event("failed", subscriber, severity="permanent", reason="bounce"))
    assert hook.post_body(body).status_code == 200
    again = signed(event("failed", subscriber, severity="permanent", reason="bounce"))
    assert hook.post_body(again).status_code == 200

    assert len([e for e in events_of(site, subscriber.id) if e["source"] == "provider"]) == 1


def test_a_signed_body_without_event_data_is_a_400(hook: MailgunHook) -> None:
    body = signed({})
    body["event-data"] = ["x"]
    assert hook.post_body(body).status_code == 400


def test_a_request_that_fails_halfway_leaves_its_token_for_mailguns_retry(
    hook: MailgunHook, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = signed(event("complained", subscriber))

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as broken:
        broken.setattr("newsletter.send.provider_events.change_statuses", killed)
        assert hook.post_body(body).status_code == 500
    assert status_of(site, subscriber) == "active"  # nothing of it committed

    assert hook.post_body(body).status_code == 200  # Mailgun's retry: same token, same event
    assert status_of(site, subscriber) == "complained"
