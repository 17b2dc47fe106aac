"""``newsletter new --from-feed URL``: a digest issue from an RSS or Atom feed (feedparser).

Each item becomes a section: its title, date, a short summary in plain words and a link
to read the whole post; newest first, from ``--since`` on, at most ``--limit`` items.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from newsletter.author.article_import import write_issue
from newsletter.author.fetch import fetch, is_url, read_local
from newsletter.author.scaffold import slugify
from newsletter.errors import NewsletterError

SUMMARY_LENGTH = 300
DEFAULT_LIMIT = 10
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#])")


@dataclass(frozen=True)
class FeedItem:
    title: str
    link: str
    published: dt.date | None
    summary: str
    key: str = ""  # the entry's id (its guid), else its link: how a later read knows it


@dataclass(frozen=True)
class Feed:
    title: str  # "our blog" when the feed has none
    items: list[FeedItem]  # those with a title and a link, newest first


def import_feed(
    source: str,
    issues_dir: Path,
    *,
    since: dt.date | None = None,
    limit: int = DEFAULT_LIMIT,
    today: dt.date | None = None,
) -> Path:
    feed = read_feed(source)
    items = feed.items
    if since is not None:
        items = [item for item in items if item.published and item.published >= since]
    items = items[:limit]
    if not items:
        when = f" since {since.isoformat()}" if since else ""
        raise NewsletterError(f"{source}: the feed has no items{when}; nothing to make a digest of")
    date = today or dt.date.today()
    path = issues_dir / f"{date.isoformat()}-{slugify(digest_title(feed))}.md"
    return write_digest(feed, items, path, date=date)


def read_feed(source: str) -> Feed:
    """The feed at ``source`` (a URL or a file); :class:`NewsletterError` naming it when
    it cannot be fetched or is not a feed."""
    import feedparser  # only for the commands that read feeds

    if is_url(source):
        fetched = fetch(source)
        data, base = fetched.data, fetched.url
    else:
        data, base = read_local(Path(source)), source
    feed = feedparser.parse(data)
    if not feed.entries and _looks_like_html(data):
        raise NewsletterError(_not_a_feed(source, base, data))
    if feed.bozo and not feed.entries:
        raise NewsletterError(
            f"{source}: not an RSS or Atom feed ({feed.get('bozo_exception', 'unreadable')}); "
            "check the address"
        )
    items = [_item(entry) for entry in feed.entries]
    items = [item for item in items if item.link and item.title]
    items.sort(key=lambda item: item.published or dt.date.min, reverse=True)
    title = " ".join(str(feed.feed.get("title", "")).split()) or "our blog"
    return Feed(title, items)


def digest_title(feed: Feed) -> str:
    return f"The latest from {feed.title}"


def write_digest(
    feed: Feed,
    items: list[FeedItem],
    path: Path,
    *,
    date: dt.date,
    topics: Sequence[str] = (),
) -> Path:
    """The digest issue of ``items`` (newest first), written to ``path`` (never over a file)."""
    if path.exists():
        raise NewsletterError(f"{path} already exists; rename or delete it first")
    count = f"{len(items)} post{'s' if len(items) != 1 else ''}"
    matter: dict[str, object] = {
        "title": digest_title(feed),
        "preheader": f"{count} from {feed.title}: {items[0].title}"[:140],
        "date": date,
        "topics": list(topics),
    }
    sections = [_section(item) for item in items]
    write_issue(path, matter, "\n\n".join(sections) + "\n")
    return path


def _item(entry: Any) -> FeedItem:
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    summary_html = entry.get("summary") or ""
    if not summary_html and entry.get("content"):
        summary_html = entry["content"][0].get("value", "")
    link = str(entry.get("link", ""))
    return FeedItem(
        title=" ".join(html.unescape(str(entry.get("title", ""))).split()),
        link=link,
        published=dt.date(*published[:3]) if published else None,
        summary=_shorten(_plain_text(summary_html), SUMMARY_LENGTH),
        key=str(entry.get("id") or link)[:500],
    )


def _section(item: FeedItem) -> str:
    lines = [f"## {_escape(item.title)}", ""]
    if item.published:
        lines += [f"*{item.published.day} {item.published:%B %Y}*", ""]
    if item.summary:
        lines += [_escape(item.summary), ""]
    lines.append(f"[Read the whole post]({item.link})")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _shorten(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    return text[: length - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skipping += 1
        elif tag in ("p", "br", "li", "div"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _plain_text(fragment: str) -> str:
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return " ".join("".join(parser.parts).split())


# The kinds of <link rel="alternate"> that name a feed this command reads.
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
_HTML_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head)\b",
    re.IGNORECASE | re.DOTALL,
)


def _looks_like_html(data: bytes) -> bool:
    return _HTML_START.match(data[:4096]) is not None


def _not_a_feed(source: str, base: str, data: bytes) -> str:
    """What to say about a web page given as a feed: the feed it names, if it names one."""
    links = _FeedLinks()
    links.feed(data.decode("utf-8", "replace"))
    links.close()
    if links.hrefs:
        feed_url = urljoin(base, links.hrefs[0]) if is_url(base) else links.hrefs[0]
        return (
            f"{source}: this is a web page, not an RSS or Atom feed; the page names its "
            f"feed: newsletter new --from-feed {feed_url}"
        )
    return (
        f"{source}: this is a web page, not an RSS or Atom feed, and it names no feed "
        '(no <link rel="alternate">); find the feed\'s address on the site (often /feed/, '
        "/rss.xml or /atom.xml)"
    )


class _FeedLinks(HTMLParser):
    """The feeds a page names: ``<link rel="alternate" type="application/rss+xml">``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {name: (value or "") for name, value in attrs}
        rel = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        href = values.get("href", "").strip()
        if "alternate" in rel and kind in FEED_TYPES and href:
            self.hrefs.append(href)
