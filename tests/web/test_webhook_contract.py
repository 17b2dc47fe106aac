"""What every provider's webhook promises (``POST /webhooks/sendgrid``, ``/postmark``,
``/mailgun``, ``/ses``), each driven as its provider drives it (tests/web/hooks/), on
SQLite and PostgreSQL: who is not the provider is refused and changes nothing; a bounce
bounces and a complaint complains, through the one status rule, so a complaint is never
downgraded; a retried record counts once; a record applied halfway (a worker killed)
leaves nothing, and the provider's retry applies it; records settle the campaign's
``unknown`` rows; a refusal of the content fails the copy as blocked and suppresses no
one. Each provider's own ways (SendGrid's batches and signature, Postmark's records and
basic auth, Mailgun's signed tokens, SNS's signatures and subscriptions) are in
test_webhook.py (SendGrid) and test_webhook_<provider>.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from newsletter.models import Subscriber
from newsletter.send.campaign_rows import Campaign, start_campaign, state_counts
from newsletter.send.ledger import Ledger
from newsletter.store.returns import blocked_copies
from newsletter.web.context import Services
from tests.web.conftest import events_of
from tests.web.hooks import PROVIDERS, Hook


@pytest.fixture(params=PROVIDERS)
def hook(request: pytest.FixtureRequest, make_hook: Callable[..., Hook]) -> Hook:
    return make_hook(request.param)


@pytest.fixture
def site(hook: Hook) -> Services:
    return hook.site


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


def unknown_campaign(hook: Hook) -> Campaign:
    """A campaign through the hook's provider whose every copy is ``unknown``: the sender
    died with the batch out."""
    campaign = start_campaign(
        hook.site.store, slug="issue-1", issue_path="issues/x.md", subject="S", topics=(),
        provider=hook.name,
    )  # fmt: skip
    ledger = Ledger(hook.site.store, campaign.id)
    batch = ledger.next_batch(after=0, size=10)
    assert batch is not None
    ledger.hand_over(batch)
    ledger.recover()
    return campaign


@pytest.mark.parametrize(
    ("record", "status"),
    [
        ("bounce", "bounced"),
        ("soft_bounce", "active"),
        ("blocked", "active"),
        ("complaint", "complained"),
        ("delivery", "active"),
    ],
)
def test_records_change_the_subscriber(
    hook: Hook, site: Services, subscriber: Subscriber, record: str, status: str
) -> None:
    response = hook.post(getattr(hook, record)(subscriber))

    assert response.status_code == 200
    assert status_of(site, subscriber) == status


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "ses"])  # SES has none
def test_an_unsubscribe_unsubscribes_and_is_recorded_as_the_providers_for_the_campaign(
    make_hook: Callable[..., Hook], provider: str
) -> None:
    hook = make_hook(provider)
    subscriber = hook.site.store.add("ada@example.org", source="test")

    assert hook.post(hook.unsubscribe(subscriber, campaign_id=12)).status_code == 200

    assert status_of(hook.site, subscriber) == "unsubscribed"
    [*_, last] = events_of(hook.site, subscriber.id)
    assert last["source"] == provider
    record = hook.site.store.describe(subscriber.email)
    assert (record["unsubscribe_source"], record["unsubscribe_campaign_id"]) == (provider, 12)


def test_a_complaint_is_never_downgraded_and_a_retried_record_counts_once(
    hook: Hook, site: Services, subscriber: Subscriber
) -> None:
    complaint = hook.complaint(subscriber)
    assert hook.post(complaint).status_code == 200
    before = events_of(site, subscriber.id)

    assert hook.post(hook.bounce(subscriber, number=2)).status_code == 200
    unsubscribe = hook.unsubscribe(subscriber, number=3)
    if unsubscribe is not None:
        assert hook.post(unsubscribe).status_code == 200
    assert hook.post(complaint).status_code == 200  # the provider's retry

    assert status_of(site, subscriber) == "complained"
    assert events_of(site, subscriber.id) == before


def test_records_settle_the_campaigns_unknown_rows(
    hook: Hook, site: Services, subscriber: Subscriber
) -> None:
    bob = site.store.add("bob@example.org", source="test")
    campaign = unknown_campaign(hook)
    assert state_counts(site.store, campaign.id)["unknown"] == 2

    assert hook.post(hook.delivery(subscriber, campaign.id)).status_code == 200
    assert hook.post(hook.bounce(bob, campaign.id, 2)).status_code == 200

    counts = state_counts(site.store, campaign.id)
    assert (counts["sent"], counts["failed"], counts["unknown"]) == (1, 1, 0)
    assert status_of(site, bob) == "bounced"


def test_a_refusal_of_the_content_fails_the_copy_as_blocked_and_suppresses_no_one(
    hook: Hook, site: Services, subscriber: Subscriber
) -> None:
    campaign = unknown_campaign(hook)

    assert hook.post(hook.blocked(subscriber, campaign.id)).status_code == 200

    assert state_counts(site.store, campaign.id)["failed"] == 1
    assert blocked_copies(site.store, campaign.id) == 1  # what status and report count
    assert status_of(site, subscriber) == "active"
    assert not site.store.is_suppressed(subscriber.email)


def test_a_forged_request_is_refused(hook: Hook, site: Services, subscriber: Subscriber) -> None:
    response = hook.forge(hook.complaint(subscriber))

    assert response.status_code == hook.refused
    assert status_of(site, subscriber) == "active"


def test_without_its_secret_every_request_is_refused(
    hook: Hook, make_hook: Callable[..., Hook], subscriber: Subscriber,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    if hook.name == "ses":
        hook = make_hook("ses", sns_topic_arns=[])  # no topic trusted
    elif hook.name == "sendgrid":
        hook.site.webhook_key = None  # read when the app starts: none was set
    else:
        monkeypatch.delenv(SECRETS[hook.name])

    assert hook.post(hook.complaint(subscriber)).status_code == 403
    assert status_of(hook.site, subscriber) == "active"


SECRETS = {"postmark": "POSTMARK_WEBHOOK_PASSWORD", "mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY"}


@pytest.mark.parametrize("body", [b"not json", b"[" * 100_000])
def test_a_body_that_is_not_json_is_refused(hook: Hook, body: bytes) -> None:
    assert hook.post(body).status_code == hook.unreadable


def test_a_record_that_fails_halfway_is_applied_by_the_providers_retry(
    hook: Hook, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    complaint = hook.complaint(subscriber)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the worker died here")

    with monkeypatch.context() as broken:
        broken.setattr("newsletter.send.provider_events.change_statuses", killed)
        assert hook.post(complaint).status_code == 500
    assert status_of(site, subscriber) == "active"  # nothing of it committed, its id neither

    assert hook.post(complaint).status_code == 200  # the provider's retry
    assert status_of(site, subscriber) == "complained"
