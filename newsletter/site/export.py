"""``newsletter site build``: the public site as static files, for any static host."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from newsletter.config import Config
from newsletter.errors import SiteError
from newsletter.site.pages import Site
from newsletter.site.published import published_issues
from newsletter.store import Store, open_store
from newsletter.store.schema import campaigns
from newsletter.store.snapshots import issue_snapshots


@dataclass(frozen=True)
class BuildSummary:
    out: Path
    issues: int
    pages: int  # pages, feeds, sitemap and robots.txt
    images: int
    seconds: float
    missing: list[str] = field(default_factory=list)  # images the pages show, not found


def build_site(config: Config, out: Path) -> BuildSummary:
    """Write every page, feed and image of the site below ``out``."""
    started = time.monotonic()
    store = open_store(config)
    try:
        site = Site(config, published_issues(config, store))
    finally:
        store.close()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SiteError(f"{out}: cannot create the folder ({error.strerror})") from None
    for path in site.paths():
        made = site.file(path)
        assert made is not None
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(made.content)
    copied, missing = 0, []
    for path, source in site.images().items():
        if not source.is_file():
            missing.append(path.removeprefix("assets/"))
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            shutil.copy2(source, target)
        copied += 1
    return BuildSummary(
        out=out,
        issues=len(site.issues),
        pages=len(site.paths()),
        images=copied,
        seconds=time.monotonic() - started,
        missing=missing,
    )


class LiveSite:
    """The site for ``newsletter serve``: made again only when a campaign starts (a new
    snapshot), so every request costs one small query."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._key: tuple[tuple[int, bool], ...] | None = None
        self._site: Site | None = None
        self._lock = threading.Lock()

    def current(self) -> Site:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(campaigns.c.id, issue_snapshots.c.campaign_id)
                .outerjoin(issue_snapshots, issue_snapshots.c.campaign_id == campaigns.c.id)
                .order_by(campaigns.c.id)
            ).all()
        key = tuple((row[0], row[1] is not None) for row in rows)
        with self._lock:
            if self._site is None or key != self._key:
                self._site = Site(self.config, published_issues(self.config, self.store))
                self._key = key
            return self._site
