"""Atom 1.0 and RSS 2.0 feeds with each issue's full content (sanitised, absolute URLs),
its topics as categories. Written with feedgen; the HTML cleaned with nh3."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Literal
from urllib.parse import urljoin

import nh3
from feedgen.feed import FeedGenerator

from newsletter.config import Config
from newsletter.site.published import PublishedIssue

FeedKind = Literal["atom", "rss"]
# The newest issues only: feed readers poll the whole file; the archive has the rest.
FEED_ENTRIES = 20


def clean_html(html: str, base_url: str) -> str:
    """The content as a feed reader may show it: no script, style or event handler, and
    every link and image absolute (a reader resolves relative ones against the feed)."""

    def absolute(_tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            return urljoin(base_url, value)
        return value

    return nh3.clean(html, attribute_filter=absolute, link_rel="noopener noreferrer")


def render_feed(
    kind: FeedKind,
    config: Config,
    issues: Sequence[PublishedIssue],
    *,
    content: Callable[[PublishedIssue], str],
    link: Callable[[str], str],
    feed_url: str,
    topic_name: str | None = None,
) -> bytes:
    site_url = config.site_url.rstrip("/")
    title = f"{config.name}: {topic_name}" if topic_name else config.name
    feed = FeedGenerator()
    feed.id(feed_url)
    feed.title(title)
    feed.subtitle(config.description or title)  # RSS requires a description
    feed.link(href=f"{site_url}/", rel="alternate")
    feed.link(href=feed_url, rel="self")
    feed.language(config.language)
    feed.author({"name": config.sender.name or config.name})
    shown = list(issues[:FEED_ENTRIES])
    feed.updated(max((_sent(p) for p in shown), default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    topics = {topic.id: topic.name for topic in config.topics}
    for published in shown:
        issue = published.issue
        url = link(published.slug)
        entry = feed.add_entry(order="append")
        entry.id(url)
        entry.guid(url, permalink=True)
        entry.title(issue.title)
        entry.link(href=url, rel="alternate")
        entry.published(_sent(published))
        entry.updated(_sent(published))
        if issue.preheader:
            entry.summary(issue.preheader)
        if issue.author:
            entry.author({"name": issue.author.name})
        for topic in issue.topics:
            entry.category(term=topic, label=topics.get(topic, topic))
        entry.content(clean_html(content(published), url), type="html")
    document: bytes = feed.atom_str(pretty=True) if kind == "atom" else feed.rss_str(pretty=True)
    return document


def _sent(published: PublishedIssue) -> dt.datetime:
    """When the issue went out: its campaign's start (the issue's date is only a day)."""
    sent = published.sent_at
    return sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)
