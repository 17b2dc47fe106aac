"""SendGrid's opens and clicks, per reader and per link (issue 15, reports): the webhook
tells readers apart by the subscriber id in ``custom_args``, so ``report`` shows unique
opens, unique clicks and the top links of a SendGrid campaign, a batch retried whole or
in part changing nothing. What every provider's tracking does (tracking off, an erased
reader's late events) is in test_webhook_provider_engagement.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from newsletter.models import Subscriber
from newsletter.reports.figures import Report
from newsletter.reports.formats import as_csv, as_json, as_table
from newsletter.reports.html import as_html
from newsletter.reports.queries import build_report
from newsletter.send.campaign_rows import Campaign, start_campaign
from newsletter.store.engagement import engagement_by_subscriber
from newsletter.web.context import Services
from tests.web.conftest import Webhook
from tests.web.hooks import SendGridHook, figures

HOME = "https://example.org/"
STORY = "https://example.org/story?utm=mail&x=<b>"


@pytest.fixture
def tracked(site: Services) -> Services:
    site.events.tracked_by = frozenset({"sendgrid"})  # as with sendgrid.tracking: true
    return site


@pytest.fixture
def readers(site: Services) -> list[Subscriber]:
    return [
        site.store.add(f"reader{n}@example.org", topics=("research",), source="test")
        for n in range(3)
    ]


@pytest.fixture
def campaign(site: Services, readers: list[Subscriber]) -> Campaign:
    return start_campaign(
        site.store, slug="s", issue_path="i.md", subject="S", topics=(), provider="sendgrid"
    )


def engagement(
    kind: str, reader: Subscriber, campaign: Campaign, number: int, **extra: Any
) -> dict[str, Any]:
    return SendGridHook.event(kind, reader, campaign.id, number, **extra)


def batch(readers: list[Subscriber], campaign: Campaign) -> list[dict[str, Any]]:
    """Reader 0 opens three times and clicks the story twice and home once; reader 1
    opens once and clicks the story; reader 2 does nothing."""
    first, second, _ = readers
    return [
        engagement("open", first, campaign, 1),
        engagement("open", first, campaign, 2),
        engagement("open", first, campaign, 3),
        engagement("click", first, campaign, 4, url=STORY),
        engagement("click", first, campaign, 5, url=STORY),
        engagement("click", first, campaign, 6, url=HOME),
        engagement("open", second, campaign, 7),
        engagement("click", second, campaign, 8, url=STORY),
    ]


def report_of(site: Services) -> Report:
    return build_report(site.store, tracking=True, tracked_by={"sendgrid"})


def test_repeated_opens_and_clicks_count_once_per_reader_and_a_retry_changes_nothing(
    webhook: Webhook, tracked: Services, readers: list[Subscriber], campaign: Campaign
) -> None:
    events = batch(readers, campaign)
    assert webhook(events).status_code == 200

    [issue] = report_of(tracked).issues
    expected = (4, 2, 4, 2, [(STORY, 3), (HOME, 1)])
    assert figures(issue) == expected

    assert webhook(events).status_code == 200  # SendGrid's retry of the same batch
    assert webhook(events[:3]).status_code == 200  # and of a part of it
    [issue] = report_of(tracked).issues
    assert figures(issue) == expected

    # A later batch: reader 0 again (no new reader), reader 2 for the first time.
    webhook(
        [
            engagement("open", readers[0], campaign, 9),
            engagement("open", readers[2], campaign, 10),
            engagement("click", readers[2], campaign, 11, url=HOME),
        ]
    )
    [issue] = report_of(tracked).issues
    assert figures(issue) == (6, 3, 5, 3, [(STORY, 3), (HOME, 2)])


def test_every_format_of_the_report_shows_readers_and_top_links(
    webhook: Webhook, tracked: Services, readers: list[Subscriber], campaign: Campaign
) -> None:
    webhook(batch(readers, campaign))
    report = report_of(tracked)

    table = as_table(report).splitlines()
    assert table[0].split()[-4:] == ["OPENS", "(READERS)", "CLICKS", "(READERS)"]
    assert table[1].split()[-4:] == ["4", "(2)", "4", "(2)"]
    assert "  opens 4 (2 readers), clicks 4 (2 readers)" in table
    assert f"       3  {STORY}" in table and f"       1  {HOME}" in table

    [issue] = json.loads(as_json(report))["issues"]
    assert (issue["unique_opens"], issue["unique_clicks"], issue["unique_note"]) == (2, 2, "")
    assert issue["top_links"] == [{"url": STORY, "clicks": 3}, {"url": HOME, "clicks": 1}]

    [row] = csv.DictReader(io.StringIO(as_csv(report)))
    assert (row["opens"], row["unique_opens"], row["clicks"], row["unique_clicks"]) == (
        "4",
        "2",
        "4",
        "2",
    )
    assert row["top_links"] == f"3 {STORY} | 1 {HOME}"

    page = as_html(report, title="Report", generated=dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    assert "<td>4 (2)</td>" in page
    assert "https://example.org/story?utm=mail&amp;x=&lt;b&gt;" in page  # escaped
    assert "<b>" not in page


def test_erasure_removes_the_readers_rows_and_their_counts(
    webhook: Webhook, tracked: Services, readers: list[Subscriber], campaign: Campaign
) -> None:
    webhook(batch(readers, campaign))
    assert per_reader_rows(tracked) == 4

    tracked.store.forget(readers[0].email)

    assert per_reader_rows(tracked) == 2  # reader 1's open and click
    [issue] = report_of(tracked).issues
    assert (issue.unique_opens, issue.unique_clicks) == (1, 1)


def per_reader_rows(site: Services) -> int:
    with site.store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(engagement_by_subscriber)) or 0
