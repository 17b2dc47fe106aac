"""``newsletter site build``: the static site, served by a plain static file server and
walked in a real Chromium."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import open_store
from tests.conftest import ROOT, skip_or_fail
from tests.site.publishing import SEED_SLUG, publish, write_issue

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def published(config: Config) -> Config:
    store = open_store(config)
    try:
        publish(config, store, config.issues_dir / "2026-11-26-stem-cells-in-breast-milk.md")
        publish(
            config,
            store,
            write_issue(
                config, "2027-01-10-milk-banks.md", "Milk banks",
                "Donated milk, [explained](https://example.org/banks).\n\n![A milk bank fridge]"
                "(images/stem-cells-hero.jpg)",
                preheader="How donated milk reaches babies.", topics="[stories]",
            ),
        )  # fmt: skip
        write_issue(config, "2027-02-01-draft.md", "A draft", "Not sent.")
    finally:
        store.close()
    return config


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static file server (the standard library's) on 127.0.0.1."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    server.shutdown()
    server.server_close()


def test_site_build_writes_every_page_feed_and_image(
    runner: CliRunner, published: Config, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    result = runner.invoke(cli, ["site", "build", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Wrote 2 issue(s): ")
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    # The images as mailed (resized, content-hashed names), where mail points.
    mailed = [name for name in files if re.fullmatch(r"assets/[\w-]+-[0-9a-f]{12}\.\w+", name)]
    written = [name for name in files if name not in mailed]
    assert len(mailed) >= 2
    assert written == sorted(
        [
            "index.html", "feed.xml", "rss.xml", "sitemap.xml", "robots.txt",
            f"archive/{SEED_SLUG}/index.html", "archive/milk-banks/index.html",
            "years/2026/index.html", "years/2027/index.html",
            *(f"topics/{topic}/{feed}" for topic in published.topic_ids
              for feed in ("feed.xml", "rss.xml")),
            "assets/issues/images/logo.png", "assets/issues/images/stem-cells-hero.jpg",
            "assets/issues/images/author-hazem-barmada.png",
        ]
    )  # fmt: skip
    assert "A draft" not in (out / "index.html").read_text()
    for page in out.rglob("*.html"):
        assert page.stat().st_size < 100_000, page  # before images


def test_site_build_into_a_file_is_one_error_line(
    runner: CliRunner, published: Config, tmp_path: Path
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file")

    result = runner.invoke(cli, ["site", "build", "--out", str(blocker / "site")])

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {blocker / 'site'}: cannot create the folder")
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        skip_or_fail("axe-core is not installed (npm ci)")
    return AXE.read_text(encoding="utf-8")


@pytest.mark.chromium
def test_the_static_site_works_from_a_plain_file_server(
    runner: CliRunner,
    published: Config,
    static_server: tuple[str, Path],
    browser: Any,
    axe_source: str,
) -> None:
    base, folder = static_server
    assert runner.invoke(cli, ["site", "build", "--out", str(folder)]).exit_code == 0
    problems: list[str] = []
    pages, other_files = walk(browser, base, axe_source, problems)

    assert problems == []
    assert {base, f"{base}archive/{SEED_SLUG}/", f"{base}archive/milk-banks/"} <= pages
    assert f"{base}feed.xml" in other_files and f"{base}rss.xml" in other_files


def walk(browser: Any, base: str, axe: str, problems: list[str]) -> tuple[set[str], set[str]]:
    """Every page reachable from the home page: loaded without console errors or failed
    requests, axe-clean (serious, critical) at 375 and 1280 px; every internal link
    (pages, feeds, images) answers 200. Nothing outside 127.0.0.1 is requested."""
    context = browser.new_context()
    context.route(
        lambda url: not url.startswith(base), lambda route: route.abort()
    )  # never leave the machine
    seen_pages: set[str] = set()
    other_files: set[str] = set()
    queue = [base]
    try:
        while queue:
            url = queue.pop()
            if url in seen_pages:
                continue
            seen_pages.add(url)
            page = context.new_page()
            page.on(
                "console",
                lambda message, url=url: (
                    message.type == "error" and problems.append(f"{url}: {message.text}")
                ),
            )
            page.on(
                "requestfailed",
                lambda request, url=url: problems.append(f"{url}: failed {request.url}"),
            )
            page.set_viewport_size({"width": 375, "height": 900})
            response = page.goto(url, wait_until="load")
            if response is None or response.status != 200:
                problems.append(f"{url}: {response.status if response else 'no answer'}")
                page.close()
                continue
            page.add_script_tag(content=axe)
            for width in (375, 1280):
                page.set_viewport_size({"width": width, "height": 900})
                violations = page.evaluate(
                    "async () => (await axe.run(document, {resultTypes: ['violations']}))"
                    ".violations"
                )
                problems.extend(
                    f"{url} at {width}px: {v['id']} ({v['impact']}): {v['nodes'][0]['html'][:100]}"
                    for v in violations
                    if v["impact"] in ("serious", "critical")
                )
            links = page.evaluate(
                "() => [...document.querySelectorAll('a[href], link[href], img[src]')]"
                ".map(e => e.href || e.src)"
            )
            page.close()
            for link in links:
                target = urldefrag(urljoin(url, link)).url
                if not target.startswith(base):
                    continue
                if target.endswith("/") or target.endswith(".html"):
                    queue.append(target)
                elif target not in other_files:
                    other_files.add(target)
                    status = context.request.get(target).status
                    if status != 200:
                        problems.append(f"{url}: link {target} answers {status}")
    finally:
        context.close()
    return seen_pages, other_files


# Where a page's first heading sits in its <main>, and whether anything scrolls sideways.
HEADING_PLACE = """() => {
    const main = document.querySelector('main').getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(document.querySelector('main h1, main h2'));
    const heading = range.getBoundingClientRect();
    return {
        dir: document.documentElement.getAttribute('dir'),
        lang: document.documentElement.getAttribute('lang'),
        scrollWidth: document.documentElement.scrollWidth,
        fromRight: main.right - heading.right,
        fromLeft: heading.left - main.left,
    };
}"""


@pytest.mark.chromium
def test_an_arabic_site_reads_from_the_right_on_every_page(
    runner: CliRunner,
    project: Path,
    published: Config,
    static_server: tuple[str, Path],
    browser: Any,
    axe_source: str,
) -> None:
    settings = project / "newsletter.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("\nlanguage: en\n", "\nlanguage: ar\n"),
        encoding="utf-8",
    )
    base, folder = static_server
    assert runner.invoke(cli, ["site", "build", "--out", str(folder)]).exit_code == 0
    problems: list[str] = []
    pages, _ = walk(browser, base, axe_source, problems)  # axe-clean, nothing broken
    assert problems == []
    assert {base, f"{base}archive/{SEED_SLUG}/", f"{base}archive/milk-banks/"} <= pages, pages

    years = {f"{base}years/2026/", f"{base}years/2027/"}  # linked once the home is full
    for url in sorted(pages | years):
        for width in (375, 700):
            page = browser.new_page(viewport={"width": width, "height": 900})
            try:
                page.goto(url, wait_until="load")
                place = page.evaluate(HEADING_PLACE)
            finally:
                page.close()
            assert (place["dir"], place["lang"]) == ("rtl", "ar"), url
            assert place["scrollWidth"] <= width, (url, width)
            # The heading starts at the right edge and any gap is on its left.
            assert place["fromRight"] < place["fromLeft"] + 1, (url, width, place)
