"""First-party click (and open) tracking: the campaign's links through ``/c/<token>``.

Opt-in (``tracking.clicks``, ``tracking.opens``). When a campaign starts (or resumes),
:func:`tracked_content` numbers the issue's links in the order they appear, records
them in ``campaign_links`` and rewrites them, in the HTML and the plain-text part, to
``site_url/c/<token>``, whose token names only (campaign, link number). The web app
(:mod:`newsletter.web.clicks`) counts the click and redirects to the recorded URL.

The content stays the same for every recipient, so tracking costs nothing per message.
The subscriber web app's own links (unsubscribe, preferences, archive) are left alone.
"""

from __future__ import annotations

import dataclasses
import html
import re

from sqlalchemy import Connection, select

from newsletter.config import Config
from newsletter.render.compile import marker
from newsletter.send.providers import Content
from newsletter.store import Store
from newsletter.store.scheduling import campaign_links
from newsletter.store.subscriber_rows import insert_ignoring_duplicates
from newsletter.tokens import TrackingSigner

_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)
# The web app's own routes: tracking them would only hide what the reader asked for.
_OWN_ROUTES = ("/u/", "/p/", "/c/", "/o/", "/confirm/", "/archive/")


def tracked_content(
    config: Config, store: Store, content: Content, signer: TrackingSigner, campaign_id: int
) -> Content:
    """``content`` with its links (and, with ``tracking.opens``, a pixel) tracked."""
    site = config.site_url
    if config.tracking.clicks:
        urls = _trackable(content, site)
        numbers = register_links(store, campaign_id, urls)
        tracked = {url: f"{site}/c/{signer.click_token(campaign_id, numbers[url])}" for url in urls}
        html_links, text_links = tracked, tracked
        if config.tracking.per_subscriber:
            # Each reader's links end in their own key, filled in per recipient.
            html_links = {
                url: f"{link}/{marker('html', 'click_key')}" for url, link in tracked.items()
            }
            text_links = {
                url: f"{link}/{marker('text', 'click_key')}" for url, link in tracked.items()
            }
        content = dataclasses.replace(
            content,
            html=_rewrite_html(content.html, html_links),
            text=_rewrite_text(content.text, text_links),
        )
    if config.tracking.opens:
        source = f"{site}/o/{signer.click_token(campaign_id, TrackingSigner.OPEN)}"
        if config.tracking.per_subscriber:
            # As the links: the reader's key, so opens count once per reader.
            source += f"/{marker('html', 'click_key')}"
        pixel = (
            f'<img src="{source}" '
            'width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">'
        )
        body_end = content.html.lower().rfind("</body>")
        at = body_end if body_end >= 0 else len(content.html)
        content = dataclasses.replace(content, html=content.html[:at] + pixel + content.html[at:])
    return content


def _trackable(content: Content, site: str) -> list[str]:
    """The issue's http(s) links, first appearance first (HTML, then the text part)."""
    found: dict[str, None] = {}
    for match in _HREF.finditer(content.html):
        url = html.unescape(match[2])
        if _is_trackable(url, site):
            found.setdefault(url)
    return list(found)


def _is_trackable(url: str, site: str) -> bool:
    if not url.startswith(("http://", "https://")) or "[[" in url:
        return False  # mailto:, anchors, and personalisation markers stay as they are
    return not any(url.startswith(site + route) for route in _OWN_ROUTES)


def _rewrite_html(source: str, tracked: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match[2])
        return f"{match[1]}{html.escape(tracked[url])}{match[3]}" if url in tracked else match[0]

    return _HREF.sub(replace, source)


def _rewrite_text(text: str, tracked: dict[str, str]) -> str:
    """The same URLs in the plain-text part, whole URLs only (longest first)."""
    if not tracked:
        return text
    urls = sorted(tracked, key=len, reverse=True)
    pattern = re.compile("(?<![^\\s(<\\[])(" + "|".join(map(re.escape, urls)) + ")(?=[\\s)>\\]]|$)")
    return pattern.sub(lambda match: tracked[match[1]], text)


def register_links(store: Store, campaign_id: int, urls: list[str]) -> dict[str, int]:
    """The number of each URL in the campaign, recording new ones.

    A resumed campaign keeps its numbers (tokens already in inboxes name them); a URL
    added to the issue since gets the next free number.
    """
    with store.engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            known = _known(connection, campaign_id)
            next_number = max(known.values(), default=-1) + 1
            rows = []
            for url in urls:
                if url not in known:
                    rows.append(
                        {"campaign_id": campaign_id, "link": next_number, "url": url, "clicks": 0}
                    )
                    known[url] = next_number
                    next_number += 1
            insert_ignoring_duplicates(connection, campaign_links, rows)
            return _known(connection, campaign_id)


def _known(connection: Connection, campaign_id: int) -> dict[str, int]:
    rows = connection.execute(
        select(campaign_links.c.url, campaign_links.c.link).where(
            campaign_links.c.campaign_id == campaign_id
        )
    )
    return {url: link for url, link in rows}
