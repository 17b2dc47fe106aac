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
        self._images: dict[Path, tuple[int, frozenset[Path]]] = {}
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
        entries = []
        for path in self._published(sent):
            entry = self._cached(self._entries, path, self._entry)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda entry: entry.date, reverse=True)

    def public_images(self, sent: Iterable[str]) -> frozenset[Path]:
        """The local image files that may be served: those the issues among ``sent``
        show (as compiled, brand logo included) and the brand's logo. Drafts, notes and
        anything else in the project folder stay private."""
        images: set[Path] = set()
        for path in self._published(sent):
            shown: frozenset[Path] = self._cached(self._images, path, self._images_of)
            images.update(shown)
        if self.config.brand.logo:
            images.add((self.config.root / self.config.brand.logo).resolve())
        return frozenset(images)

    def _published(self, sent: Iterable[str]) -> list[Path]:
        wanted = set(sent)
        found = []
        for path in list_issues(self.config.issues_dir):
            slug = issue_slug(path)
            if slug in wanted:
                wanted.discard(slug)  # the newest file of a slug, as find() picks
                found.append(path)
        return found

    def _images_of(self, path: Path) -> frozenset[Path]:
        try:
            issue = read_issue(path, topics=self.config.topic_ids)
            return frozenset(compile_issue(issue, self.config).assets)
        except NewsletterError:
            return frozenset()

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
