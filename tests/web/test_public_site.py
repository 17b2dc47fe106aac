"""The public site as ``newsletter serve`` shows it: the web version of each sent issue
(from its snapshot), the home page by year, the feeds, the sitemap and robots.txt."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest
from flask.testing import FlaskClient

from newsletter.site.export import build_site
from newsletter.store.snapshots import find_snapshot
from newsletter.web.context import Services
from tests.site.publishing import SEED_SLUG, publish, write_issue

SEED_FILE = "2026-11-26-stem-cells-in-breast-milk.md"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class MetaTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "meta" and ("property" in values or "name" in values):
            self.meta[values.get("property") or values["name"]] = values.get("content", "")
        if tag == "link" and values.get("rel") == "canonical":
            self.links["canonical"] = values["href"]


def head_of(page: str) -> MetaTags:
    parser = MetaTags()
    parser.feed(page)
    return parser


def publish_seed(site: Services) -> None:
    publish(site.config, site.store, site.config.issues_dir / SEED_FILE)


def publish_three(site: Services) -> None:
    """The seed issue (2026, research) and two newer ones (2027), one with markup to escape."""
    publish_seed(site)
    config = site.config
    publish(
        config,
        site.store,
        write_issue(
            config, "2027-01-10-milk-banks.md", '"Milk <banks> & you"',
            "Donated milk, [explained](https://example.org/banks).",
            preheader="How donated milk reaches babies.", topics="[research, stories]",
        ),
    )  # fmt: skip
    publish(
        config,
        site.store,
        write_issue(config, "2027-02-01-night-feeds.md", "Night feeds", "Sleep, and its lack."),
    )


def test_the_web_version_is_a_web_page_not_the_email(client: FlaskClient, site: Services) -> None:
    publish_seed(site)

    response = client.get(f"/archive/{SEED_SLUG}/")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Stem Cells: The Medicine in Breast Milk?</h1>" in page
    assert '<time datetime="2026-11-26">26 November 2026</time> · by Dr Hazem Barmada' in page
    assert "remarkable cells pass from mother to child" in page
    # No inbox furniture: no greeting, no "you are receiving", no unsubscribe link.
    for email_only in ("Hi there", "Hi ", "receiving this", "Unsubscribe", "[[html:"):
        assert email_only not in page
    # A Subscribe form that works from any host, and the way back to the list.
    assert f'<form method="get" action="{site.config.site_url}/subscribe">' in page
    assert '<a href="../../#issues">All issues</a>' in page
    assert '<img src="../../assets/issues/images/stem-cells-hero.jpg"' in page
    assert response.headers["Cache-Control"] == "public, max-age=300"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert f"form-action 'self' {site.config.site_url}" in policy


def test_the_web_version_carries_open_graph_and_a_canonical_url(
    client: FlaskClient, site: Services
) -> None:
    publish_seed(site)

    head = head_of(client.get(f"/archive/{SEED_SLUG}/").get_data(as_text=True))

    url = f"{site.config.site_url}/archive/{SEED_SLUG}/"
    assert head.links["canonical"] == url
    assert head.meta["og:url"] == url
    assert head.meta["og:title"] == "Stem Cells: The Medicine in Breast Milk?"
    assert head.meta["og:description"].startswith("Breast milk is food, and it may be medicine")
    hero = f"{site.config.site_url}/assets/issues/images/stem-cells-hero.jpg"
    assert head.meta["og:image"] == hero
    assert head.meta["twitter:card"] == "summary_large_image"
    assert head.meta["twitter:image"] == hero


def test_mail_links_to_the_web_version(client: FlaskClient, site: Services) -> None:
    publish_seed(site)

    assert site.links.view(SEED_SLUG) == f"{site.config.site_url}/archive/{SEED_SLUG}/"
    # The address mailed before it had a trailing slash still leads there.
    moved = client.get(f"/archive/{SEED_SLUG}")
    assert moved.status_code in (301, 308)
    assert moved.headers["Location"].endswith(f"/archive/{SEED_SLUG}/")


def test_previous_and_next_issue_links(client: FlaskClient, site: Services) -> None:
    publish_three(site)

    middle = client.get("/archive/milk-banks/").get_data(as_text=True)
    newest = client.get("/archive/night-feeds/").get_data(as_text=True)

    assert 'Next: <a href="../../archive/night-feeds/" rel="next">Night feeds</a>' in middle
    assert f'Previous: <a href="../../archive/{SEED_SLUG}/" rel="prev">' in middle
    assert "Milk &lt;banks&gt; &amp; you" in middle
    assert 'rel="next"' not in newest


def test_the_archive_keeps_what_was_sent_not_the_file_as_it_is_now(
    client: FlaskClient, site: Services
) -> None:
    publish_seed(site)
    path = site.config.issues_dir / SEED_FILE
    path.write_text(
        path.read_text().replace("remarkable cells", "CORRECTED cells"), encoding="utf-8"
    )
    # A new draft reusing a sent issue's slug is not public either.
    write_issue(site.config, "2027-03-01-stem-cells-in-breast-milk.md", "Draft", "Secret draft.")

    page = client.get(f"/archive/{SEED_SLUG}/").get_data(as_text=True)

    assert "remarkable cells" in page
    assert "CORRECTED" not in page and "Secret draft" not in page


def test_a_draft_is_not_public(client: FlaskClient, site: Services) -> None:
    write_issue(site.config, "2027-03-01-draft.md", "Draft", "Not yet.")

    assert client.get("/archive/draft/").status_code == 404
    assert "Draft" not in client.get("/").get_data(as_text=True)
    assert "No issue has gone out yet." in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("slug", ["no-such-issue", "..%2f..%2fnewsletter", "*"])
def test_an_unknown_issue_is_a_404(client: FlaskClient, site: Services, slug: str) -> None:
    publish_seed(site)
    assert client.get(f"/archive/{slug}/").status_code == 404


def test_the_home_page_lists_the_issues_by_year_with_their_preheaders(
    client: FlaskClient, site: Services
) -> None:
    publish_three(site)

    page = client.get("/").get_data(as_text=True)

    years = re.findall(r"<h3>(\d{4})</h3>", page)
    links = re.findall(r'<a href="(archive/[^"]+)">([^<]*)</a>', page)
    assert years == ["2027", "2026"]
    assert links == [
        ("archive/night-feeds/", "Night feeds"),
        ("archive/milk-banks/", "Milk &lt;banks&gt; &amp; you"),
        (f"archive/{SEED_SLUG}/", "Stem Cells: The Medicine in Breast Milk?"),
    ]
    assert "<p>How donated milk reaches babies.</p>" in page
    assert '<a href="topics/stories/feed.xml">Atom</a>' in page
    assert all(client.get(f"/{link}").status_code == 200 for link, _ in links)


def test_the_atom_feed_carries_the_full_sanitised_content(
    client: FlaskClient, site: Services
) -> None:
    publish_three(site)

    response = client.get("/feed.xml")

    assert response.mimetype == "application/atom+xml"
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Breastfeeding World"
    titles = [entry.title for entry in feed.entries]
    assert titles == [
        "Night feeds",
        "Milk <banks> & you",
        "Stem Cells: The Medicine in Breast Milk?",
    ]
    for entry in feed.entries:
        assert entry.id == entry.link and entry.link.startswith(site.config.site_url)
        assert entry.updated_parsed and entry.content[0].value
    seed = feed.entries[2]
    content = seed.content[0].value
    assert "remarkable cells pass from mother to child" in content
    assert f'src="{site.config.site_url}/assets/issues/images/stem-cells-hero.jpg"' in content
    assert "Hi there" not in content and "Unsubscribe" not in content
    assert [tag.term for tag in feed.entries[1].tags] == ["research", "stories"]
    assert [tag.label for tag in feed.entries[1].tags] == ["Research", "Photo stories"]


def test_the_atom_feed_has_what_rfc_4287_requires(client: FlaskClient, site: Services) -> None:
    publish_three(site)
    atom = "{http://www.w3.org/2005/Atom}"

    feed = ElementTree.fromstring(client.get("/feed.xml").data)

    for required in ("id", "title", "updated", "author"):
        assert feed.find(f"{atom}{required}") is not None, required
    self_link = [link for link in feed.findall(f"{atom}link") if link.get("rel") == "self"]
    assert self_link[0].get("href") == f"{site.config.site_url}/feed.xml"
    for entry in feed.findall(f"{atom}entry"):
        for required in ("id", "title", "updated", "link", "content"):
            assert entry.find(f"{atom}{required}") is not None, required
        assert entry.find(f"{atom}content").get("type") == "html"  # type: ignore[union-attr]


def test_the_rss_feed_and_the_per_topic_feeds(client: FlaskClient, site: Services) -> None:
    publish_three(site)

    rss = feedparser.parse(client.get("/rss.xml").data)
    stories = feedparser.parse(client.get("/topics/stories/feed.xml").data)
    stories_rss = feedparser.parse(client.get("/topics/stories/rss.xml").data)

    assert not rss.bozo and rss.version == "rss20"
    assert rss.entries[0].title == "Night feeds"
    assert all(entry.id and entry.link and entry.published_parsed for entry in rss.entries)
    assert "remarkable cells" in rss.entries[2].content[0].value
    assert [entry.title for entry in stories.entries] == ["Milk <banks> & you"]
    assert stories.feed.title == "Breastfeeding World: Photo stories"
    assert [entry.title for entry in stories_rss.entries] == ["Milk <banks> & you"]
    assert client.get("/topics/nope/feed.xml").status_code == 404


def test_feed_content_is_sanitised() -> None:
    from newsletter.site.feeds import clean_html

    cleaned = clean_html(
        '<p onclick="x()">Hi<script>alert(1)</script> <a href="/a">a</a></p>',
        "https://news.example/archive/x/",
    )

    assert "script" not in cleaned and "onclick" not in cleaned
    assert 'href="https://news.example/a"' in cleaned


def test_sitemap_and_robots(client: FlaskClient, site: Services) -> None:
    publish_three(site)

    sitemap = ElementTree.fromstring(client.get("/sitemap.xml").data)
    robots = client.get("/robots.txt").get_data(as_text=True)

    locations = [loc.text for loc in sitemap.iter(f"{SITEMAP}loc")]
    assert locations[0] == f"{site.config.site_url}/"
    assert f"{site.config.site_url}/archive/{SEED_SLUG}/" in locations
    assert f"{site.config.site_url}/years/2027/" in locations
    assert len(locations) == 6  # home, 2 years, 3 issues
    assert f"Sitemap: {site.config.site_url}/sitemap.xml" in robots
    assert "Disallow: /u/" in robots and "Disallow: /p/" in robots


def test_the_subscribe_form_fills_in_the_address_on_the_signup_page(client: FlaskClient) -> None:
    page = client.get("/subscribe?email=reader%40example.org").get_data(as_text=True)

    assert 'value="reader@example.org"' in page


def test_serve_answers_with_exactly_the_files_site_build_writes(
    client: FlaskClient, site: Services, tmp_path: Path
) -> None:
    publish_three(site)

    build_site(site.config, tmp_path / "out")

    built = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert len(built) > 10
    for path in built:
        relative = path.relative_to(tmp_path / "out").as_posix()
        url = "/" + relative.removesuffix("index.html")
        with client.get(url) as response:
            assert response.data == path.read_bytes(), relative


def test_earlier_years_get_a_page_of_their_own_when_the_list_grows_long(
    client: FlaskClient, site: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsletter.site.pages.HOME_ISSUES", 2)
    publish_three(site)

    home = client.get("/").get_data(as_text=True)
    year = client.get("/years/2026/").get_data(as_text=True)

    assert re.findall(r"<h3>([^<]+)</h3>", home) == ["2027", "Earlier years"]
    assert '<a href="years/2026/">2026</a> (1 issue)' in home
    assert "<h1>Issues of 2026</h1>" in year
    assert f'<a href="../../archive/{SEED_SLUG}/">' in year
    assert client.get("/years/1999/").status_code == 404


def test_assets_serves_the_images_of_sent_issues_only(client: FlaskClient, site: Services) -> None:
    campaign = publish(site.config, site.store, site.config.issues_dir / SEED_FILE)
    snapshot = find_snapshot(site.store, campaign.id)
    assert snapshot is not None and snapshot.assets
    images = site.config.issues_dir / "images"
    (images / "draft-only.png").write_bytes((images / "logo.png").read_bytes())
    write_issue(site.config, "2027-03-01-draft.md", "Draft", "![Secret](images/draft-only.png)")

    mailed = snapshot.assets[0].path.removeprefix("build/assets/")
    for path in (mailed, "issues/images/stem-cells-hero.jpg", "issues/images/logo.png"):
        with client.get(f"/assets/{path}") as response:
            assert response.status_code == 200, path
    assert client.get("/assets/issues/images/draft-only.png").status_code == 404
