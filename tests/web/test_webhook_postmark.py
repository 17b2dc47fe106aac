"""``POST /webhooks/postmark``: what only Postmark's webhook does (its record types, its
basic auth); what every provider's does is in test_webhook_contract.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from newsletter.models import Subscriber
from newsletter.send.campaign_rows import start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import Services
from tests.web.hooks import POSTMARK_PASSWORD, PostmarkHook

bounce, change = PostmarkHook.bounce_record, PostmarkHook.change_record


@pytest.fixture
def hook(make_hook: Callable[..., PostmarkHook]) -> PostmarkHook:
    return make_hook("postmark")


@pytest.fixture
def site(hook: PostmarkHook) -> Services:
    return hook.site


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


@pytest.mark.parametrize(
    ("record", "status"),
    [
        (lambda s: bounce(s, "BadEmailAddress"), "bounced"),
        (lambda s: bounce(s, "SpamComplaint"), "complained"),
        (lambda s: change(s, "HardBounce"), "bounced"),
        (lambda s: change(s, "SpamComplaint"), "complained"),
        (lambda s: change(s, SuppressSending=False), "active"),
    ],
)
def test_records_change_the_subscriber(
    hook: PostmarkHook, site: Services, subscriber: Subscriber, record: Any, status: str
) -> None:
    response = hook.post(record(subscriber))

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


def test_a_dmarc_refusal_fails_the_copy_as_blocked_and_suppresses_no_one(
    hook: PostmarkHook, site: Services, subscriber: Subscriber
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

    assert hook.post(bounce(subscriber, "DMARCPolicy", campaign.id)).status_code == 200

    assert state_counts(site.store, campaign.id)["failed"] == 1
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)


@pytest.mark.parametrize(("user", "password"), [("someone", POSTMARK_PASSWORD), ("", "")])
def test_wrong_credentials_are_refused(
    hook: PostmarkHook, site: Services, subscriber: Subscriber, user: str, password: str
) -> None:
    response = hook.post(hook.complaint(subscriber), user=user, password=password)

    assert response.status_code == 401
    assert status_of(site, subscriber) == "active"


def test_a_body_that_is_not_a_record_is_a_400(hook: PostmarkHook) -> None:
    assert hook.post(b"[1, 2]").status_code == 400


def test_values_of_the_wrong_type_are_ignored_not_a_500(
    hook: PostmarkHook, site: Services, subscriber: Subscriber
) -> None:
    record = bounce(subscriber, Metadata={"subscriber_id": ["x"]}, ID={"a": 1}, Email=7)

    assert hook.post(record).status_code == 200
    assert status_of(site, subscriber) == "active"
