"""The "view in your browser" pages: an issue as mailed, for nobody in particular; and
the list of past issues on the home page.

``Links.view(slug)`` points every message at ``/archive/<slug>``. The page is the
issue's HTML rendered for a neutral recipient: no name, no address, and the
unsubscribe and preference links lead to ``/manage``, where a reader asks for their
own link. So a forwarded or shared archive link exposes no subscriber.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.issues import issue_slug, list_issues, read_issue
from newsletter.models import Personalization
from newsletter.personalize import Personalizer
from newsletter.render import compile_issue
from newsletter.tokens import Links

# Stands where the recipient's address goes: "... because you subscribed to ...".
NEUTRAL_EMAIL = "you"


@dataclass(frozen=True)
class PastIssue:
    """One entry of the home page's list."""

    slug: str
    title: str
    preheader: str
    date: dt.date


class Archive:
    def __init__(self, config: Config, links: Links) -> None:
        self.config = config
        self.links = links
        self._cache: dict[Path, tuple[int, str]] = {}
        self._entries: dict[Path, tuple[int, PastIssue]] = {}
        self._lock = threading.Lock()

    def find(self, slug: str) -> Path | None:
        """The newest issue file with this slug, if there is one."""
        for path in list_issues(self.config.issues_dir):
            if issue_slug(path) == slug:
                return path
        return None

    def past_issues(self, sent: Iterable[str]) -> list[PastIssue]:
        """The issues among ``sent`` (slugs of campaigns) whose files are still there,
        newest first. An issue whose front matter no longer reads is left out."""
        wanted = set(sent)
        entries = []
        for path in list_issues(self.config.issues_dir):
            slug = issue_slug(path)
            if slug in wanted:
                wanted.discard(slug)  # the newest file of a slug, as find() picks
                entry = self._entry(path)
                if entry is not None:
                    entries.append(entry)
        return sorted(entries, key=lambda entry: entry.date, reverse=True)

    def _entry(self, path: Path) -> PastIssue | None:
        modified = path.stat().st_mtime_ns
        with self._lock:
            cached = self._entries.get(path)
        if cached and cached[0] == modified:
            return cached[1]
        try:
            issue = read_issue(path, topics=self.config.topic_ids)
        except NewsletterError:
            return None
        entry = PastIssue(issue.slug, issue.title, issue.preheader, issue.date)
        with self._lock:
            self._entries[path] = (modified, entry)
        return entry

    def html(self, path: Path) -> str:
        """The issue's page; compiled once and kept until the file changes."""
        modified = path.stat().st_mtime_ns
        with self._lock:
            cached = self._cache.get(path)
        if cached and cached[0] == modified:
            return cached[1]
        html = self._render(path)
        with self._lock:
            self._cache[path] = (modified, html)
        return html

    def _render(self, path: Path) -> str:
        issue = read_issue(path, topics=self.config.topic_ids)
        compiled = compile_issue(issue, self.config)
        manage = f"{self.config.site_url}/manage"
        reader = Personalization(
            email=NEUTRAL_EMAIL,
            unsubscribe_url=manage,
            preferences_url=manage,
            view_url=self.links.view(issue.slug),
        )
        html, _text = Personalizer(compiled).render(reader)
        return html
