"""Right to left: an Arabic issue and the Arabic web pages in a real Chromium, at phone
and desktop width: nothing scrolls sideways, the layout is mirrored, and axe-core finds
nothing serious."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Config
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.tokens import sample_personalization
from tests.conftest import SEED_ISSUE, skip_or_fail
from tests.render.test_accessibility import AXE, axe_violations

# Where the text of the byline and of the article begins and ends, and the author
# block's two columns, relative to the mail's 600 px card.
GEOMETRY = """() => {
    const card = document.querySelector('.nl-card').getBoundingClientRect();
    const textOf = selector => {
        const range = document.createRange();
        range.selectNodeContents(document.querySelector(selector));
        const box = range.getBoundingClientRect();
        return {left: box.left - card.left, right: card.right - box.right};
    };
    const box = selector => document.querySelector(selector).getBoundingClientRect();
    return {
        scrollWidth: document.documentElement.scrollWidth,
        byline: textOf('.byline div'),
        picture: box('.author-picture'),
        bio: box('.author-bio'),
    };
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        skip_or_fail("axe-core is not installed (npm ci)")
    return AXE.read_text(encoding="utf-8")


def seed_html(project: Path, config: Config, language: str) -> str:
    config = config.model_copy(update={"language": language})
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    html, _ = Personalizer(
        compile_issue(issue, config, assets_base_url="http://127.0.0.1:9")
    ).render(sample_personalization(config, issue.slug))
    return html


def geometry(browser: Any, html: str, width: int) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        page.route("http://127.0.0.1:9/**", lambda route: route.abort())
        page.set_content(html, wait_until="load")
        return page.evaluate(GEOMETRY)
    finally:
        page.close()


def test_an_arabic_mail_says_right_to_left_on_every_section(project: Path, config: Config) -> None:
    html = seed_html(project, config, "ar")
    assert '<html lang="ar" dir="rtl"' in html
    # Gmail drops <html dir>: every column carries it itself, and the text aligns right.
    columns = re.findall(r'<div class="mj-outlook-group-fix[^"]*" style="([^"]*)"', html)
    assert columns and all("direction:rtl" in style for style in columns)
    assert 'class="byline"' in html and "text-align:right" in html.replace(" ", "")
    assert "border-right: 4px solid" in html  # the quote bar on the starting side
    english = seed_html(project, config, "en")
    assert "direction:rtl" not in english.replace(" ", "")


@pytest.mark.parametrize("width", [375, 700])
def test_an_arabic_mail_is_mirrored_without_sideways_scrolling(
    browser: Any, project: Path, config: Config, width: int
) -> None:
    arabic = geometry(browser, seed_html(project, config, "ar"), width)
    english = geometry(browser, seed_html(project, config, "en"), width)

    assert arabic["scrollWidth"] <= width
    # The byline starts at the right, 32 px in, where the English one starts at the left.
    assert abs(arabic["byline"]["right"] - english["byline"]["left"]) <= 2
    assert arabic["byline"]["left"] > arabic["byline"]["right"] + 40
    if width >= 600:  # side by side: the picture on the right, the bio to its left
        assert arabic["picture"]["left"] >= arabic["bio"]["right"] - 1
    else:  # stacked: the picture first, as in English
        assert arabic["bio"]["top"] >= arabic["picture"]["bottom"] - 1


@pytest.mark.parametrize("width", [375, 700])
def test_an_arabic_mail_has_no_serious_accessibility_problem(
    browser: Any, axe_source: str, project: Path, config: Config, width: int
) -> None:
    html = seed_html(project, config, "ar")
    assert axe_violations(browser, axe_source, html, width, dark=False) == []
