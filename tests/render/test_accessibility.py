"""The seed issue in a real Chromium, checked by axe-core (the accessibility engine of
browser dev tools) at phone and desktop width, in light and dark mode; and the spam and
dark-mode hygiene of the theme."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsletter.config import Config, load_config
from newsletter.render.colors import contrast, dark_accent
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.tokens import sample_personalization
from tests.conftest import ROOT, SEED_ISSUE, skip_or_fail

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def seed_html(project: Path, config: Config) -> str:
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    html, _ = Personalizer(
        compile_issue(issue, config, assets_base_url="http://127.0.0.1:9")
    ).render(sample_personalization(config, issue.slug))
    return html


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        skip_or_fail("axe-core is not installed (npm ci)")
    return AXE.read_text(encoding="utf-8")


def axe_violations(browser: Any, axe: str, html: str, width: int, dark: bool) -> list[str]:
    page = browser.new_page(
        viewport={"width": width, "height": 800}, color_scheme="dark" if dark else "light"
    )
    try:
        page.route("http://127.0.0.1:9/**", lambda route: route.abort())
        page.set_content(html, wait_until="load")
        page.add_script_tag(content=axe)
        violations = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
    finally:
        page.close()
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['html'][:120]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.chromium
@pytest.mark.parametrize("width", [375, 700])
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_seed_issue_has_no_serious_accessibility_problem(
    browser: Any, axe_source: str, project: Path, config: Config, width: int, dark: bool
) -> None:
    assert axe_violations(browser, axe_source, seed_html(project, config), width, dark) == []


def test_the_logo_link_has_a_name(project: Path, config: Config) -> None:
    html = seed_html(project, config)
    logo = re.search(r'<a href="https://news.breastfeedingworld.example"[^>]*>\s*<img[^>]*>', html)
    assert logo is not None
    assert 'alt="Breastfeeding World"' in logo[0]


def test_the_preheader_is_hidden_without_low_contrast_text(project: Path, config: Config) -> None:
    html = seed_html(project, config)
    preheader = re.search(r"<div[^>]*>Breast milk is food, and it may be medicine", html)
    assert preheader is not None
    assert "display: none" in preheader[0]
    # HTML_FONT_LOW_CONTRAST: text coloured like its background, or tiny.
    assert "color" not in preheader[0] and "font-size" not in preheader[0]


def test_dark_mode_accents_follow_the_brand_colour(project: Path) -> None:
    settings = yaml.safe_load((project / "newsletter.yaml").read_text())

    def dark_link_colour(brand: dict[str, str]) -> str:
        merged = {**settings, "brand": {**settings["brand"], **brand}}
        (project / "newsletter.yaml").write_text(yaml.safe_dump(merged))
        html = seed_html(project, load_config(project / "newsletter.yaml"))
        match = re.search(r"\.nl-card \.article a[^{]*\{ color: (#[0-9a-f]{6}) !important", html)
        assert match is not None
        return match[1]

    blue = dark_link_colour({"primary_color": "#0057b8"})
    green = dark_link_colour({"primary_color": "#2e7d32"})
    assert blue != green
    assert blue == dark_accent("#0057b8") and contrast(blue, "#1e1e1e") >= 4.5
    assert dark_link_colour({"dark_primary_color": "#88ccff"}) == "#88ccff"
