"""``/c/<token>`` and ``/o/<token>`` on SQLite and PostgreSQL: signed, no open
redirect, counted per link (and per reader only when asked), nothing else changed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from newsletter.config import Config, TrackingSettings
from newsletter.models import Subscriber
from newsletter.reports import make_report
from newsletter.send import campaign_rows
from newsletter.send.click_tracking import register_links
from newsletter.store.scheduling import campaign_links, link_clicks_by_subscriber
from newsletter.store.schema import campaign_engagement
from newsletter.tokens import TrackingSigner
from newsletter.web import shutdown
from newsletter.web.context import Services
from tests.web.conftest import SECRET
from tests.web.hooks import PROVIDERS, Hook

TARGET = "https://example.net/a?b=1&c=2"


def clicks_recorded(site: Services) -> dict[str, int]:
    with site.store.engine.connect() as connection:
        rows = connection.execute(select(campaign_links.c.url, campaign_links.c.clicks))
        return {url: clicks for url, clicks in rows}


def test_a_click_redirects_to_the_recorded_url_and_is_counted(
    app: Flask, scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    campaign = campaign_rows.start_campaign(
        site.store, slug="first", issue_path="first.md", subject="First", topics=[],
        provider="outbox",
    )  # fmt: skip
    numbers = register_links(site.store, campaign.id, [TARGET, "https://example.org/"])
    signer = TrackingSigner(SECRET)
    path = f"/c/{signer.click_token(campaign.id, numbers[TARGET])}"

    first = scanner.get(path)  # a link scanner's GET counts like a reader's
    second = scanner.get(path)

    assert (first.status_code, first.headers["Location"]) == (302, TARGET)
    assert second.headers["Location"] == TARGET
    assert first.headers["Cache-Control"] == "no-store"
    # Another campaign's number, a forged signature, the pixel's number: not links.
    assert scanner.get(f"/c/{signer.click_token(campaign.id + 1, 0)}").status_code == 404
    assert scanner.get(path[:-2] + ("aa" if not path.endswith("aa") else "bb")).status_code == 404
    assert (
        scanner.get(f"/c/{TrackingSigner('another key').click_token(campaign.id, 0)}").status_code
        == 404
    )
    assert (
        scanner.get(f"/c/{signer.click_token(campaign.id, TrackingSigner.OPEN)}").status_code == 404
    )

    shutdown(app)  # flushes the counts (the fixture's second shutdown is harmless)
    assert clicks_recorded(site) == {TARGET: 2, "https://example.org/": 0}
    assert site.store.get(subscriber.id).status == "active"  # type: ignore[union-attr]


def test_per_subscriber_clicks_are_kept_only_when_configured(
    app: Flask, scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    campaign = campaign_rows.start_campaign(
        site.store, slug="first", issue_path="first.md", subject="First", topics=[],
        provider="outbox",
    )  # fmt: skip
    register_links(site.store, campaign.id, [TARGET])
    signer = TrackingSigner(SECRET)
    token = signer.click_token(campaign.id, 0)
    key = signer.reader_key(campaign.id, subscriber.id)

    assert scanner.get(f"/c/{token}/{key}").status_code == 302
    other_campaign = signer.reader_key(campaign.id + 1, subscriber.id)
    assert scanner.get(f"/c/{token}/{other_campaign}").status_code == 404
    shutdown(app)

    with site.store.engine.connect() as connection:
        kept = connection.execute(select(link_clicks_by_subscriber)).all()
    assert kept == []  # tracking.per_subscriber is off by default
    assert clicks_recorded(site) == {TARGET: 1}


def test_a_head_request_is_answered_but_counts_no_click_and_no_open(
    app: Flask, scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    campaign = campaign_rows.start_campaign(
        site.store, slug="first", issue_path="first.md", subject="First", topics=[],
        provider="outbox",
    )  # fmt: skip
    register_links(site.store, campaign.id, [TARGET])
    signer = TrackingSigner(SECRET)
    key = signer.reader_key(campaign.id, subscriber.id)
    click = f"/c/{signer.click_token(campaign.id, 0)}/{key}"
    pixel = f"/o/{signer.click_token(campaign.id, TrackingSigner.OPEN)}/{key}"

    # Link checkers and previewers ask with HEAD: an answer, no reader behind it.
    head_click, head_pixel = scanner.head(click), scanner.head(pixel)
    assert (head_click.status_code, head_click.headers["Location"]) == (302, TARGET)
    assert (head_pixel.status_code, head_pixel.headers["Content-Type"]) == (200, "image/gif")
    assert scanner.get(click).status_code == 302
    shutdown(app)

    assert clicks_recorded(site) == {TARGET: 1}
    with site.store.engine.connect() as connection:
        opens = connection.scalar(select(func.coalesce(func.sum(campaign_engagement.c.count), 0)))
    assert opens == 0


def test_reader_keys_are_what_itsdangerous_would_sign() -> None:
    from itsdangerous import URLSafeSerializer

    signer = TrackingSigner(SECRET)
    reference = URLSafeSerializer(SECRET, salt="newsletter.click-reader")
    for campaign_id, subscriber_id in [(1, 1), (7, 123_456), (999, 10**12), (42, 4242424242)]:
        key = signer.reader_key(campaign_id, subscriber_id)
        # The fast path never compresses: where itsdangerous would (10**12's run of
        # zeros), the key differs from its own but is still one it reads.
        assert reference.loads(key) == [campaign_id, subscriber_id]
        if subscriber_id != 10**12:
            assert key == reference.dumps([campaign_id, subscriber_id])
        assert signer.read_reader_key(key) == (campaign_id, subscriber_id)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_reader_counted_by_first_party_tracking_and_the_provider_counts_once(
    web_config: Config, make_hook: Callable[..., Hook], provider: str
) -> None:
    tracking = TrackingSettings(clicks=True, opens=True, per_subscriber=True)
    hook = make_hook(provider, base=web_config.model_copy(update={"tracking": tracking}),
                     tracking=True)  # fmt: skip
    store, reader = hook.site.store, hook.site.store.add
    both, ours, theirs = (reader(f"r{n}@example.org", source="test") for n in range(3))
    campaign = campaign_rows.start_campaign(
        store, slug="s", issue_path="s.md", subject="S", topics=[], provider=provider
    )
    register_links(store, campaign.id, [TARGET])
    signer = TrackingSigner(SECRET)
    click = f"/c/{signer.click_token(campaign.id, 0)}"
    pixel = f"/o/{signer.click_token(campaign.id, TrackingSigner.OPEN)}"

    for subscriber in (both, ours):  # through our own links and pixel
        key = signer.reader_key(campaign.id, subscriber.id)
        assert hook.client.get(f"{click}/{key}").status_code == 302
        assert hook.client.get(f"{pixel}/{key}").status_code == 200
    for number, subscriber in enumerate((both, theirs)):  # as the provider tracked them
        assert hook.post(hook.click(subscriber, campaign.id, number, TARGET)).status_code == 200
        assert hook.post(hook.open(subscriber, campaign.id, 10 + number)).status_code == 200
    shutdown(hook.app)  # the clicks counted in memory are written

    [issue] = make_report(hook.site.config).issues
    assert (issue.opens, issue.unique_opens, issue.clicks, issue.unique_clicks) == (4, 3, 4, 3)
    assert [(link.url, link.clicks) for link in issue.top_links] == [(TARGET, 4)]
