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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.issues import issue_slug, list_issues, read_issue
from newsletter.models import Personalization
from newsletter.personalize import Personalizer
from newsletter.render import compile_issue
from newsletter.tokens import Links

# Stands where the recipient's address goes: "... because you subscribed to ...".
NEUTRAL_EMAIL = "you"
T = TypeVar("T")


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
        # path -> (modification time, value): kept until the file changes.
        self._pages: dict[Path, tuple[int, str]] = {}
        self._entries: dict[Path, tuple[int, PastIssue | None]] = {}
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
                entry = self._cached(self._entries, path, self._entry)
                if entry is not None:
                    entries.append(entry)
        return sorted(entries, key=lambda entry: entry.date, reverse=True)

    def _entry(self, path: Path) -> PastIssue | None:
        try:
            issue = read_issue(path, topics=self.config.topic_ids)
        except NewsletterError:
            return None
        return PastIssue(issue.slug, issue.title, issue.preheader, issue.date)

    def html(self, path: Path) -> str:
        """The issue's page; compiled once and kept until the file changes."""
        return self._cached(self._pages, path, self._render)

    def _cached(self, cache: dict[Path, tuple[int, T]], path: Path, make: Callable[[Path], T]) -> T:
        modified = path.stat().st_mtime_ns
        with self._lock:
            cached = cache.get(path)
        if cached and cached[0] == modified:
            return cached[1]
        value = make(path)
        with self._lock:
            cache[path] = (modified, value)
        return value

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
