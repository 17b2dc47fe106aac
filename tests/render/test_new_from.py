"""`newsletter new --from URL` and `--from-feed URL`, against pages and feeds served on
127.0.0.1: the seed article in its blog's layout (tests/fixtures/blog/), and a feed."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from newsletter.cli import cli
from tests.fakes.web import FakeWebSite, Page

BLOG_POST = Path(__file__).parent.parent / "fixtures" / "blog" / "stem-cells-in-breast-milk.html"
POST_PATH = "/2017/03/stem-cells/"
UPLOADS = "/wp-content/uploads/2017/03/"
TODAY = dt.date.today().isoformat()  # an issue is dated the day it is made
ISSUE = f"issues/{TODAY}-stem-cells-the-medicine-in-breast-milk.md"
# What the blog page has around the article, and must not end up in the issue.
JUNK = [
    "Leave a Reply",
    "Post Comment",
    "Your email address will not be published",
    "Share this",
    "share=facebook",
    "Tagged",
    "martha's vienayard",  # the keyword lists under the pictures
    "normalize donor milk",
    "Recent Posts",
    "Big Latch On 2016",
    "About Us",
    "Proudly powered by WordPress",
    "View all posts by",
]


def jpeg(size: tuple[int, int], colour: tuple[int, int, int] = (200, 120, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (220, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def blog() -> FakeWebSite:
    pages = {
        POST_PATH: Page(BLOG_POST.read_text(encoding="utf-8")),
        UPLOADS + "stem-cells-hero.jpg": Page(jpeg((600, 400)), "image/jpeg"),
        UPLOADS + "glowing-cells.png": Page(png((500, 300)), "image/png"),
        UPLOADS + "big-latch-on.jpg": Page(jpeg((600, 400), (90, 160, 90)), "image/jpeg"),
    }
    with FakeWebSite(pages) as site:
        yield site


def test_an_article_becomes_an_issue_without_the_blogs_junk(
    runner: CliRunner, project: Path, blog: FakeWebSite
) -> None:
    result = runner.invoke(cli, ["new", "--from", blog.url + POST_PATH])
    assert result.exit_code == 0, result.output
    assert f"created {project / ISSUE}" in result.output
    text = (project / ISSUE).read_text(encoding="utf-8")

    front, body = text.split("\n---\n", 1)
    assert "title: 'Stem Cells: The Medicine in Breast Milk?'" in front
    assert "author:\n  name: Dr Hazem Barmada" in front
    assert f"date: {TODAY}" in front
    assert "preheader: Human breast milk is often ‘sold’ to mums as a food" in front
    # The article, as Markdown: headings, a list, links made absolute, emphasis.
    assert "\n## What are Stem Cells?\n" in body
    assert "\n## The Right Type of Stem Cell\n" in body
    assert "\n1. He altered mouse genes so they would glow red under ultra-violet light.\n" in body
    assert f"[Dr Mark Cregan’s team]({blog.url}/2016/05/cregan-nestin-study/)" in body
    assert "*‘regenerative medicine’*" in body
    assert body.rstrip().endswith(
        f"*First published at [Breastfeeding World]({blog.url}{POST_PATH}) on 14 March 2017.*"
    )
    for junk in JUNK:
        assert junk not in text, junk

    # Images downloaded; a keyword list is no description: the editor must write one.
    images = re.findall(r"!\[([^\]]*)\]\(([^)]*)\)", body)
    prefix = "images/stem-cells-the-medicine-in-breast-milk-"
    assert images == [
        ("alt: describe this image", prefix + "stem-cells-hero.jpg"),
        ("Mouse cells glowing red under ultraviolet light", prefix + "glowing-cells.png"),
        ("alt: describe this image", prefix + "big-latch-on.jpg"),
    ]
    for _, src in images:
        assert (project / "issues" / src).is_file()

    # check holds the issue back until the two images are described, and nothing else.
    checked = runner.invoke(cli, ["check", ISSUE])
    errors = [line for line in checked.output.splitlines() if ": error: " in line]
    assert len(errors) == 2 and all("fill in its alt text" in line for line in errors), errors
    described = text.replace("alt: describe this image", "A mother feeding her baby")
    (project / ISSUE).write_text(described, encoding="utf-8")
    assert runner.invoke(cli, ["check", ISSUE]).exit_code == 0


def test_a_saved_page_can_be_imported_too(runner: CliRunner, project: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved" / "post.html"
    saved.parent.mkdir()
    page = BLOG_POST.read_text(encoding="utf-8").replace(UPLOADS, "post_files/")
    saved.write_text(page, encoding="utf-8")
    (saved.parent / "post_files").mkdir()
    for name in ("stem-cells-hero.jpg", "big-latch-on.jpg"):
        (saved.parent / "post_files" / name).write_bytes(jpeg((60, 40)))
    (saved.parent / "post_files" / "glowing-cells.png").write_bytes(png((50, 30)))

    result = runner.invoke(cli, ["new", "--from", str(saved)])
    assert result.exit_code == 0, result.output
    body = (project / ISSUE).read_text(encoding="utf-8")
    assert "](images/stem-cells-the-medicine-in-breast-milk-glowing-cells.png)" in body
    assert "*First published by Breastfeeding World on 14 March 2017.*" in body


def test_a_saved_page_brings_only_images_from_its_own_folder(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "saved" / "post.html"
    (saved.parent / "post_files").mkdir(parents=True)
    (saved.parent / "post_files" / "stem-cells-hero.jpg").write_bytes(jpeg((60, 40)))
    private = tmp_path / "private.png"  # beside the page's folder, not in it
    private.write_bytes(png((50, 30)))
    elsewhere = tmp_path / "home" / "keys.jpg"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(jpeg((60, 40)))
    page = BLOG_POST.read_text(encoding="utf-8")
    page = page.replace(UPLOADS + "stem-cells-hero.jpg", "post_files/stem-cells-hero.jpg")
    page = page.replace(UPLOADS + "glowing-cells.png", "../private.png")
    page = page.replace(UPLOADS + "big-latch-on.jpg", str(elsewhere))
    saved.write_text(page, encoding="utf-8")

    result = runner.invoke(cli, ["new", "--from", str(saved)])

    assert result.exit_code == 0, result.output
    copied = sorted(path.name for path in (project / "issues" / "images").iterdir())
    assert "stem-cells-the-medicine-in-breast-milk-stem-cells-hero.jpg" in copied
    assert not [name for name in copied if "private" in name or "keys" in name]
    assert f"../private.png is outside the page's folder ({saved.parent}), not copied" in (
        result.output
    )
    assert f"{elsewhere} is outside the page's folder" in result.output


def test_an_unreachable_article_is_one_clear_error(runner: CliRunner, blog: FakeWebSite) -> None:
    result = runner.invoke(cli, ["new", "--from", blog.url + "/no-such-post/"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {blog.url}/no-such-post/: the server answered 404 Not Found\n"
    )


FEED = Path(__file__).parent.parent / "fixtures" / "blog" / "feed.xml"  # {url}: the site


def test_a_feed_becomes_a_digest_of_its_latest_items(runner: CliRunner, project: Path) -> None:
    with FakeWebSite({}) as site:
        feed = FEED.read_text(encoding="utf-8").replace("{url}", site.url)
        site.pages["/feed/"] = Page(feed, "application/rss+xml")
        result = runner.invoke(
            cli,
            ["new", "--from-feed", site.url + "/feed/", "--since", "2017-02-01", "--limit", "5"],
        )
    assert result.exit_code == 0, result.output
    path = project / "issues" / f"{TODAY}-the-latest-from-breastfeeding-world.md"
    text = path.read_text(encoding="utf-8")
    assert "title: The latest from Breastfeeding World" in text
    assert "## Stem Cells: The Medicine in Breast Milk?\n\n*14 March 2017*" in text
    assert (
        "Human breast milk is often sold to mums as a food. There is another way to look "
        "at it \\[1\\]." in text
    )
    assert f"[Read the whole post]({site.url}/2017/03/stem-cells/)" in text
    assert text.index("Stem Cells") < text.index("Big Latch On 2016")  # newest first
    assert "World Breastfeeding Week" not in text  # before --since
    assert "alert(1)" not in text
    assert runner.invoke(cli, ["check", str(path)]).exit_code == 0


def test_new_takes_one_source(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["new", "Title", "--from", "x.html"])
    assert result.exit_code == 2
    assert "give a TITLE, --from URL or --from-feed URL (one of them)" in result.output


def test_a_web_page_given_as_a_feed_is_named_so_with_the_feed_it_links_to(
    runner: CliRunner, project: Path
) -> None:
    page = BLOG_POST.read_text(encoding="utf-8").replace(
        "</head>",
        '<link rel="alternate" type="application/rss+xml" title="Breastfeeding World &raquo; '
        'Feed" href="/feed/" />\n</head>',
        1,
    )
    with FakeWebSite({POST_PATH: Page(page)}) as site:
        result = runner.invoke(cli, ["new", "--from-feed", site.url + POST_PATH])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {site.url}{POST_PATH}: this is a web page, not an RSS or Atom feed; the page "
        f"names its feed: newsletter new --from-feed {site.url}/feed/\n"
    )
    assert not list((project / "issues").glob(f"{TODAY}-*.md"))


def test_a_web_page_without_a_feed_link_says_where_feeds_usually_are(
    runner: CliRunner, project: Path
) -> None:
    with FakeWebSite({"/about/": Page("<!doctype html><title>About</title><p>Hi.</p>")}) as site:
        result = runner.invoke(cli, ["new", "--from-feed", site.url + "/about/"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {site.url}/about/: this is a web page, not an RSS or Atom feed, and it names "
        'no feed (no <link rel="alternate">); find the feed\'s address on the site (often '
        "/feed/, /rss.xml or /atom.xml)\n"
    )


def test_an_image_the_page_shows_twice_is_downloaded_once(
    runner: CliRunner, project: Path, blog: FakeWebSite
) -> None:
    glowing = '<figure><img src="/wp-content/uploads/2017/03/glowing-cells.png" alt="Mouse cells'
    same_bytes = f"{UPLOADS}glowing-cells-600x360.png"  # another URL, the same file
    page = BLOG_POST.read_text(encoding="utf-8").replace(
        "<h2>The Right Type of Stem Cell</h2>",
        f'{glowing} glowing red again"></figure>\n'
        f'<figure><img src="{same_bytes}" alt="Mouse cells glowing red once more"></figure>\n'
        "<h2>The Right Type of Stem Cell</h2>",
    )
    blog.pages[POST_PATH] = Page(page)
    blog.pages[same_bytes] = blog.pages[UPLOADS + "glowing-cells.png"]

    result = runner.invoke(cli, ["new", "--from", blog.url + POST_PATH])

    assert result.exit_code == 0, result.output
    images = sorted(path.name for path in (project / "issues" / "images").glob("*-glowing*"))
    assert images == ["stem-cells-the-medicine-in-breast-milk-glowing-cells.png"]
    assert blog.requests[UPLOADS + "glowing-cells.png"] == 1
    body = (project / ISSUE).read_text(encoding="utf-8")
    assert body.count("](images/stem-cells-the-medicine-in-breast-milk-glowing-cells.png)") == 3
    assert result.output.count("downloaded ") == 3  # hero, glowing cells, big latch on
