"""Opens and clicks from SendGrid (``open``, ``click``), Postmark (``Open``, ``Click``),
Mailgun (``opened``, ``clicked``) and SES (``Open``, ``Click`` through SNS), posted to the
real web app as each provider posts them: with ``<provider>.tracking`` on, ``newsletter
report`` shows the opens, the readers who opened and clicked (each once) and the top
links, the same for every provider; with it off, nothing is counted. SendGrid's batches
and the report's formats are in test_webhook_engagement.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from newsletter.models import Subscriber
from newsletter.reports import make_report
from newsletter.reports.formats import as_table
from newsletter.send.campaign_rows import Campaign, reactions, start_campaign
from newsletter.store.engagement import engagement_by_subscriber, provider_link_clicks
from tests.web.hooks import PROVIDERS, Hook, figures

HOME = "https://example.org/"
STORY = "https://example.org/story?utm=mail&x=<b>"


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def readers_and_campaign(hook: Hook) -> tuple[list[Subscriber], Campaign]:
    store = hook.site.store
    readers = [
        store.add(f"reader{n}@example.org", topics=("research",), source="test") for n in range(3)
    ]
    campaign = start_campaign(
        store, slug="s", issue_path="i.md", subject="S", topics=(), provider=hook.name
    )
    return readers, campaign


def records(hook: Hook, readers: list[Subscriber], campaign: Campaign) -> list[Any]:
    """Reader 0 opens three times and clicks the story and home; reader 1 opens once and
    clicks the story; reader 2 does nothing. (Postmark posts a reader's first click on
    each link only; every open when its webhook is set to. SendGrid's repeated clicks:
    test_webhook_engagement.py.)"""
    first, second, _ = readers
    return [
        hook.open(first, campaign.id, 1),
        hook.open(first, campaign.id, 2),
        hook.open(first, campaign.id, 3),
        hook.click(first, campaign.id, 4, STORY),
        hook.click(first, campaign.id, 5, HOME),
        hook.open(second, campaign.id, 6),
        hook.click(second, campaign.id, 7, STORY),
    ]


def test_opens_and_clicks_show_in_the_report_once_each_whatever_is_posted_again(
    make_hook: Callable[..., Hook], provider: str
) -> None:
    hook = make_hook(provider, tracking=True)
    readers, campaign = readers_and_campaign(hook)
    posted = records(hook, readers, campaign)

    assert [hook.post(record).status_code for record in posted] == [200] * len(posted)

    [issue] = make_report(hook.site.config).issues
    expected = (4, 2, 3, 2, [(STORY, 2), (HOME, 1)])
    assert figures(issue) == expected
    table = as_table(make_report(hook.site.config)).splitlines()
    assert "  opens 4 (2 readers), clicks 3 (2 readers)" in table
    assert f"       2  {STORY}" in table and f"       1  {HOME}" in table
    assert reactions(hook.site.store, campaign.id) == {"unsubscribed": 0, "open": 4, "click": 3}

    for record in posted:  # the provider's retries of every record
        assert hook.post(record).status_code == 200
    assert figures(make_report(hook.site.config).issues[0]) == expected

    # Later: reader 0 opens again (no new reader), reader 2 opens and clicks home.
    for record in [
        hook.open(readers[0], campaign.id, 8),
        hook.open(readers[2], campaign.id, 9),
        hook.click(readers[2], campaign.id, 10, HOME),
    ]:
        assert hook.post(record).status_code == 200
    [issue] = make_report(hook.site.config).issues
    assert figures(issue) == (6, 3, 4, 3, [(STORY, 2), (HOME, 2)])


def test_without_the_providers_tracking_opens_and_clicks_are_not_counted(
    make_hook: Callable[..., Hook], provider: str
) -> None:
    hook = make_hook(provider)  # <provider>.tracking: false (the default)
    readers, campaign = readers_and_campaign(hook)

    for record in records(hook, readers, campaign):
        assert hook.post(record).status_code == 200

    [issue] = make_report(hook.site.config).issues
    assert (issue.tracked, issue.opens, issue.unique_opens, issue.top_links) == (
        False, None, None, [],
    )  # fmt: skip
    assert reactions(hook.site.store, campaign.id) == {"unsubscribed": 0, "open": 0, "click": 0}
    with hook.site.store.engine.connect() as connection:
        for table in (engagement_by_subscriber, provider_link_clicks):
            assert connection.scalar(select(func.count()).select_from(table)) == 0


def test_a_click_on_something_that_is_not_a_web_link_counts_without_its_link(
    make_hook: Callable[..., Hook], provider: str
) -> None:
    hook = make_hook(provider, tracking=True)
    readers, campaign = readers_and_campaign(hook)

    hook.post(hook.click(readers[0], campaign.id, 1, "javascript:alert(1)"))

    [issue] = make_report(hook.site.config).issues
    assert (issue.clicks, issue.unique_clicks, issue.top_links) == (1, 1, [])


def test_an_erased_readers_late_opens_count_in_the_totals_only(
    make_hook: Callable[..., Hook], provider: str
) -> None:
    hook = make_hook(provider, tracking=True)
    readers, campaign = readers_and_campaign(hook)
    posted = records(hook, readers, campaign)  # built while reader 0 still exists
    hook.site.store.forget(readers[0].email)

    for record in posted:
        assert hook.post(record).status_code == 200

    [issue] = make_report(hook.site.config).issues
    assert figures(issue) == (4, 1, 3, 1, [(STORY, 2), (HOME, 1)])
