"""Every file of the public site, made from the published issues.

:class:`Site` answers ``file(path)`` for a path inside the site ("index.html",
"archive/SLUG/index.html", "feed.xml", ...), rendering on first use and keeping the
result: a site is made for one set of published issues, which never change (they are
snapshots), so the web app makes a new one only when a campaign starts.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup

from newsletter.config import Config
from newsletter.models import Issue
from newsletter.render.colors import contrast
from newsletter.render.compile import issue_catalog, language_context, template_environment
from newsletter.site.feeds import FeedKind, render_feed
from newsletter.site.published import PublishedIssue, image_path

WEB_TEMPLATE = "web.html.j2"
HOME_TEMPLATE = "site/home.html.j2"
YEAR_TEMPLATE = "site/year.html.j2"
# The home page lists whole years of issues, newest first, until this many are shown;
# earlier years get a page each (keeps every page well under 100 KB).
HOME_ISSUES = 100
STYLE_TEMPLATE = "site/style.css.j2"
ARTICLE_TEMPLATE = "site/article.html.j2"

HTML = "text/html; charset=utf-8"
XML = "application/xml"
MEDIA_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml"}
FEED_FILES: dict[FeedKind, str] = {"atom": "feed.xml", "rss": "rss.xml"}
# Where the image pipeline writes the resized copies that mail links to (see
# newsletter.render.images); /assets serves that folder first, then the project's own files.
PROCESSED_IMAGES = "build/assets"


@dataclass(frozen=True)
class SiteFile:
    content: bytes
    media_type: str


class Site:
    def __init__(self, config: Config, issues: list[PublishedIssue]) -> None:
        self.config = config
        self.issues = issues  # newest first
        self.site_url = config.site_url.rstrip("/")
        self._index = {published.slug: number for number, published in enumerate(issues)}
        self._environment = template_environment(config)
        # The site speaks the newsletter's language (issues keep their own in their text).
        self._language = language_context(issue_catalog(config))
        self._files: dict[str, SiteFile] = {}
        self._lock = threading.Lock()
        self._stylesheet: Markup | None = None
        self._public_files: frozenset[Path] | None = None
        self._environment.filters.setdefault("css_value", css_value)

    # -- what the site holds -------------------------------------------------------

    def paths(self) -> list[str]:
        """Every page and feed of the site (images: :meth:`images`)."""
        paths = ["index.html", "feed.xml", "rss.xml", "sitemap.xml", "robots.txt"]
        paths += [f"archive/{published.slug}/index.html" for published in self.issues]
        paths += [f"years/{year}/index.html" for year, _ in self._years()]
        for topic in self.config.topics:
            paths += [f"topics/{topic.id}/feed.xml", f"topics/{topic.id}/rss.xml"]
        return paths

    def images(self) -> dict[str, Path]:
        """Site path ("assets/...") -> file, for every local image the pages show."""
        root = self.config.root
        images: dict[str, Path] = {}
        if self.config.brand.logo:
            images[f"assets/{self._logo_path()}"] = root / self.config.brand.logo
        for published in self.issues:
            # The images as mailed (resized copies in build/assets/, which /assets serves
            # first): mail points at assets_url, so a site hosted at site_url keeps them.
            for asset in published.snapshot.assets:
                served = asset.path.removeprefix(f"{PROCESSED_IMAGES}/")
                images.setdefault(f"assets/{served}", root / asset.path)
            for src in _image_sources(published.issue):
                relative = image_path(self.config, published.issue.path.parent, src)
                if relative and "://" not in relative:
                    images.setdefault(f"assets/{relative}", published.issue.path.parent / src)
        return {path: file.resolve() for path, file in images.items()}

    def public_files(self) -> frozenset[Path]:
        """The image files ``/assets`` may serve: those of the sent issues (as mailed and
        as the pages show them) and the logo. Drafts' images and other files stay private."""
        if self._public_files is None:
            self._public_files = frozenset(self.images().values())
        return self._public_files

    def file(self, path: str) -> SiteFile | None:
        """The page or feed at ``path``, or None if the site has no such file."""
        with self._lock:
            cached = self._files.get(path)
        if cached is not None:
            return cached
        made = self._make(path)
        if made is not None:
            with self._lock:
                self._files[path] = made
        return made

    def _make(self, path: str) -> SiteFile | None:
        parts = path.split("/")
        if path == "index.html":
            return SiteFile(self.home().encode(), HTML)
        if path == "sitemap.xml":
            return SiteFile(self.sitemap().encode(), XML)
        if path == "robots.txt":
            return SiteFile(self.robots().encode(), "text/plain; charset=utf-8")
        for kind, name in FEED_FILES.items():
            if path == name:
                return SiteFile(self.feed(kind), MEDIA_TYPES[kind])
            topic = parts[1] if len(parts) == 3 and parts[0] == "topics" else None
            if topic in self.config.topic_ids and parts[2] == name:
                return SiteFile(self.feed(kind, topic=parts[1]), MEDIA_TYPES[kind])
        if len(parts) == 3 and parts[0] == "years" and parts[2] == "index.html":
            entries = dict(self._years()).get(int(parts[1]) if parts[1].isdigit() else -1)
            if entries:
                return SiteFile(self.year_page(int(parts[1]), entries).encode(), HTML)
        issue = len(parts) == 3 and parts[0] == "archive" and parts[2] == "index.html"
        if issue and parts[1] in self._index:
            return SiteFile(self.issue_page(parts[1]).encode(), HTML)
        return None

    # -- pages -----------------------------------------------------------------------

    def issue_url(self, slug: str) -> str:
        """The canonical address of an issue's web version (where mail links lead)."""
        return f"{self.site_url}/archive/{slug}/"

    def _years(self) -> list[tuple[int, list[PublishedIssue]]]:
        return [
            (year, list(entries))
            for year, entries in itertools.groupby(self.issues, key=lambda p: p.issue.date.year)
        ]

    def home(self) -> str:
        years: list[tuple[int, list[PublishedIssue]]] = []
        earlier: list[tuple[int, int]] = []
        shown = 0
        for year, entries in self._years():
            if years and shown + len(entries) > HOME_ISSUES:
                earlier.append((year, len(entries)))
            else:
                years.append((year, entries))
                shown += len(entries)
        used = {topic for published in self.issues for topic in published.issue.topics}
        return self._render(
            HOME_TEMPLATE,
            root="",
            canonical_url=f"{self.site_url}/",
            years=years,
            earlier_years=earlier,
            topic_feeds=[topic for topic in self.config.topics if topic.id in used],
        )

    def year_page(self, year: int, entries: list[PublishedIssue]) -> str:
        return self._render(
            YEAR_TEMPLATE,
            root="../../",
            canonical_url=f"{self.site_url}/years/{year}/",
            year=year,
            entries=entries,
        )

    def issue_page(self, slug: str) -> str:
        number = self._index[slug]
        published = self.issues[number]
        issue = published.issue
        root = "../../"
        hero_url = self.absolute_asset_url(issue)(issue.hero.src) if issue.hero else None
        return self._render(
            WEB_TEMPLATE,
            root=root,
            canonical_url=self.issue_url(slug),
            issue=issue,
            asset_url=self._asset_url(issue, f"{root}assets/"),
            hero_url=hero_url,
            topic_names=[topic.name for topic in self.config.topics if topic.id in issue.topics],
            newer=self.issues[number - 1] if number > 0 else None,
            older=self.issues[number + 1] if number + 1 < len(self.issues) else None,
        )

    def article_html(self, published: PublishedIssue) -> str:
        """The issue's content with absolute URLs, for the feeds."""
        issue = published.issue
        template = self._environment.get_template(ARTICLE_TEMPLATE)
        return template.render(
            **self._language,
            config=self.config,
            issue=issue,
            asset_url=self.absolute_asset_url(issue),
        )

    def absolute_asset_url(self, issue: Issue) -> Callable[..., str]:
        return self._asset_url(issue, f"{self.site_url}/assets/")

    def feed(self, kind: FeedKind, *, topic: str | None = None) -> bytes:
        issues = [p for p in self.issues if topic is None or topic in p.issue.topics]
        name = next((t.name for t in self.config.topics if t.id == topic), None)
        where = f"topics/{topic}/" if topic else ""
        return render_feed(
            kind,
            self.config,
            issues,
            content=self.article_html,
            link=self.issue_url,
            feed_url=f"{self.site_url}/{where}{FEED_FILES[kind]}",
            topic_name=name,
        )

    def sitemap(self) -> str:
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
            f"  <url><loc>{escape(self.site_url)}/</loc></url>",
        ]
        for year, _entries in self._years():
            lines.append(f"  <url><loc>{escape(self.site_url)}/years/{year}/</loc></url>")
        for published in self.issues:
            lines.append(
                f"  <url><loc>{escape(self.issue_url(published.slug))}</loc>"
                f"<lastmod>{published.issue.date.isoformat()}</lastmod></url>"
            )
        lines.append("</urlset>")
        return "\n".join(lines) + "\n"

    def robots(self) -> str:
        # The personal pages (token links, forms) also say noindex themselves.
        return (
            "User-agent: *\n"
            "Disallow: /u/\nDisallow: /p/\nDisallow: /confirm/\nDisallow: /manage\n"
            f"Sitemap: {self.site_url}/sitemap.xml\n"
        )

    # -- rendering -------------------------------------------------------------------

    def _render(self, template: str, *, root: str, **context: Any) -> str:
        logo = f"{root}assets/{self._logo_path()}" if self.config.brand.logo else None
        return self._environment.get_template(template).render(
            **self._language,
            config=self.config,
            brand=self.config.brand,
            root=root,
            logo=logo,
            stylesheet=self.stylesheet(),
            subscribe_url=f"{self.site_url}/subscribe",
            manage_url=f"{self.site_url}/manage",
            **context,
        )

    def stylesheet(self) -> Markup:
        if self._stylesheet is None:
            brand = self.config.brand
            # CSS, not HTML: rendered without HTML escaping (quotes in font names stay).
            text_environment = template_environment(self.config, text=True)
            text_environment.filters.setdefault("css_value", css_value)
            css = text_environment.get_template(STYLE_TEMPLATE).render(
                brand=brand,
                link_color=_readable(brand.primary_color, brand.content_background_color),
                button_text=_on(brand.primary_color),
            )
            # Plain CSS, never HTML: nothing in it may close the <style> element.
            self._stylesheet = Markup(css.replace("</", "<\\/"))
        return self._stylesheet

    def _asset_url(self, issue: Issue, base: str) -> Callable[..., str]:
        def asset_url(src: str, relative_to: Path | None = None) -> str:
            found = image_path(self.config, relative_to or issue.path.parent, src)
            return found if "://" in found else f"{base}{found}"

        return asset_url

    def _logo_path(self) -> str:
        return image_path(self.config, self.config.root, self.config.brand.logo or "")


def _image_sources(issue: Issue) -> list[str]:
    sources = [issue.hero.src] if issue.hero else []
    sources += [block.image.src for block in issue.blocks if hasattr(block, "image")]
    if issue.author and issue.author.image:
        sources.append(issue.author.image)
    return sources


def _on(background: str) -> str:
    """Black or white, whichever reads better on ``background``."""
    return (
        "#ffffff"
        if contrast("#ffffff", background) >= contrast("#000000", background)
        else "#000000"
    )


def _readable(color: str, background: str) -> str:
    """``color`` if it reads on ``background`` (4.5:1), else black or white."""
    return color if contrast(color, background) >= 4.5 else _on(background)


def css_value(value: str) -> str:
    return "".join(ch for ch in value if ch not in "<>{};\\\n\r")
