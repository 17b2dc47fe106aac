"""What readers see: the seed issue in a real headless Chromium at phone and desktop width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Config
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.tokens import sample_personalization
from tests.conftest import SEED_ISSUE

pytestmark = pytest.mark.chromium


@pytest.fixture
def seed_html(project: Path, config: Config) -> str:
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    # Images come from a data-less local path: layout must not depend on them loading.
    html, _ = Personalizer(
        compile_issue(issue, config, assets_base_url="http://127.0.0.1:9")
    ).render(sample_personalization(config, issue.slug))
    return html


def author_boxes(browser: Any, html: str, width: int, dark: bool = False) -> dict[str, Any]:
    page = browser.new_page(
        viewport={"width": width, "height": 800}, color_scheme="dark" if dark else "light"
    )
    page.route("http://127.0.0.1:9/**", lambda route: route.abort())
    page.set_content(html, wait_until="load")
    geometry = page.evaluate("""() => {
        const box = sel => document.querySelector(sel).getBoundingClientRect();
        const bio = document.querySelector('.nl-author .author');
        return {
            picture: box('.author-picture'), bio: box('.author-bio'),
            scrollWidth: document.documentElement.scrollWidth,
            bioColor: getComputedStyle(bio.querySelector('p')).color,
            bodyBackground: getComputedStyle(document.querySelector('.nl-body')).backgroundColor,
        };
    }""")
    page.close()
    return geometry


def test_author_box_stacks_on_a_phone(browser: Any, seed_html: str) -> None:
    phone = author_boxes(browser, seed_html, 375)
    assert phone["bio"]["top"] >= phone["picture"]["bottom"] - 1  # bio below the picture
    assert phone["scrollWidth"] <= 375  # no horizontal scrolling


def test_author_box_sits_side_by_side_on_a_desktop(browser: Any, seed_html: str) -> None:
    desktop = author_boxes(browser, seed_html, 800)
    assert abs(desktop["bio"]["top"] - desktop["picture"]["top"]) < 2
    assert desktop["bio"]["left"] >= desktop["picture"]["right"] - 1


def test_dark_mode_keeps_the_author_bio_readable(browser: Any, seed_html: str) -> None:
    light = author_boxes(browser, seed_html, 800)
    dark = author_boxes(browser, seed_html, 800, dark=True)
    assert dark["bodyBackground"] == "rgb(18, 18, 18)"
    assert light["bioColor"] == "rgb(34, 34, 34)"
    assert dark["bioColor"] == "rgb(224, 224, 224)"
