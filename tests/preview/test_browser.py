"""The preview in a real headless Chromium: live updates, scroll, widths, dark mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.preview import PreviewServer
from tests.conftest import SEED_ISSUE
from tests.preview.conftest import SEED_STEM

pytestmark = pytest.mark.chromium

TIMEOUT_MS = 10_000


@pytest.fixture
def page(browser: Any, server: PreviewServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def open_preview(page: Any, server: PreviewServer, fragment: str = "") -> None:
    page.goto(f"{server.url}/issue/{SEED_STEM}{fragment}")
    page.wait_for_selector("#live[data-state='live']")
    # The frames have loaded and been sized to their content.
    page.wait_for_function(
        "[...document.querySelectorAll('iframe[data-frame]')].filter(f => !f.closest('[hidden]'))"
        ".every(f => f.contentDocument && f.contentDocument.readyState === 'complete'"
        " && parseInt(f.style.height) > 1000)"
    )


def wait_until_frame_fits(page: Any, frame_id: str) -> None:
    """The frame is as tall as the email in it, so the page scrolls, not the frame."""
    page.wait_for_function(
        "id => { const frame = document.getElementById(id);"
        " const root = frame.contentDocument.documentElement;"
        " return frame.clientHeight > 1000"
        " && frame.clientHeight === Math.ceil(root.getBoundingClientRect().height) }",
        arg=frame_id,
    )


def test_a_save_updates_the_page_without_reload_and_keeps_the_scroll(
    page: Any, server: PreviewServer, project: Path
) -> None:
    open_preview(page, server)
    page.evaluate("window.scrollTo(0, 1500); window.notReloaded = true")
    assert page.evaluate("window.scrollY") == 1500

    issue = project / SEED_ISSUE
    source = issue.read_text(encoding="utf-8")
    issue.write_text(
        source.replace("## What are stem cells?", "## What exactly are stem cells?"),
        encoding="utf-8",
    )

    phone = page.frame_locator("#frame-light-phone")
    phone.get_by_text("What exactly are stem cells?").wait_for()
    page.frame_locator("#frame-light-desktop").get_by_text(
        "What exactly are stem cells?"
    ).wait_for()
    assert page.evaluate("window.notReloaded") is True
    assert page.evaluate("window.scrollY") == 1500
    page.wait_for_selector("#live[data-state='live']")


def test_an_error_appears_in_the_page_and_goes_away_on_the_next_good_save(
    page: Any, server: PreviewServer, project: Path
) -> None:
    open_preview(page, server)
    issue = project / SEED_ISSUE
    good = issue.read_text(encoding="utf-8")

    issue.write_text(good.replace("title: ", "title: [", 1), encoding="utf-8")
    panel = page.locator("#problem")
    panel.get_by_text("The issue file has a problem").wait_for()
    assert "fix the YAML syntax on that line" in panel.inner_text()

    issue.write_text(good.replace("Human breast milk", "Mothers' milk"), encoding="utf-8")
    page.frame_locator("#frame-light-phone").get_by_text("Mothers' milk is often").wait_for()
    assert panel.is_hidden()


def test_the_phone_frame_is_375_px_wide_with_no_horizontal_scroll(
    page: Any, server: PreviewServer
) -> None:
    open_preview(page, server)
    phone = page.frame_locator("#frame-light-phone").locator("html")

    width = phone.evaluate("root => root.clientWidth")
    scroll_width = phone.evaluate("root => root.scrollWidth")

    assert width == 375
    assert scroll_width <= width
    wait_until_frame_fits(page, "frame-light-phone")


def test_dark_mode_view_is_dark_even_when_the_browser_prefers_light(
    page: Any, server: PreviewServer
) -> None:
    page.emulate_media(color_scheme="light")
    open_preview(page, server)
    page.get_by_role("tab", name="Dark mode").click()
    assert page.locator("[data-panel='dark']").is_visible()
    assert page.locator("[data-panel='email']").is_hidden()
    wait_until_frame_fits(page, "frame-dark-phone")  # though it loaded while hidden

    background = "el => getComputedStyle(el).backgroundColor"
    dark_body = page.frame_locator("#frame-dark-phone").locator(".nl-body")
    assert dark_body.evaluate(background) == "rgb(18, 18, 18)"

    page.emulate_media(color_scheme="dark")
    page.get_by_role("tab", name="Phone & desktop").click()
    light_body = page.frame_locator("#frame-light-phone").locator(".nl-body")
    assert light_body.evaluate(background) == "rgb(244, 239, 233)"  # brand.background_color
    assert page.url.endswith("#email")


def test_plain_text_and_headers_tabs(page: Any, server: PreviewServer) -> None:
    open_preview(page, server)

    page.get_by_role("tab", name="Plain text").click()
    assert page.locator("#text-part").inner_text().startswith("BREASTFEEDING WORLD\n")

    page.get_by_role("tab", name="Headers").click()
    headers = page.locator("#header-list").inner_text()
    assert "List-Unsubscribe-Post\tList-Unsubscribe=One-Click" in headers
    assert page.locator("iframe").first.is_hidden()

    page.reload()
    assert page.locator("#header-list").is_visible()  # the open tab survives a reload


def test_picking_a_recipient_personalises_every_view(page: Any, server: PreviewServer) -> None:
    open_preview(page, server)

    page.get_by_label("Preview as").fill("Jane Doe <jane@example.org>")
    page.get_by_role("button", name="Show").click()

    page.frame_locator("#frame-light-phone").get_by_text("Hi Jane,").wait_for()
    assert "jane@example.org: sample data" in page.locator("#as-source").inner_text()
    assert page.get_by_label("Preview as").input_value() == "Jane Doe <jane@example.org>"


def test_the_preview_page_fits_a_phone(browser: Any, server: PreviewServer) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{server.url}/issue/{SEED_STEM}")
        page.wait_for_selector("#live[data-state='live']")
        widths = page.evaluate(
            "() => ({page: document.documentElement.scrollWidth,"
            " phone: document.querySelector('.phone .email-frame').getBoundingClientRect().width})"
        )
        assert widths["page"] <= 390  # no sideways scrolling
        assert widths["phone"] >= 340  # the email still shown at (nearly) phone width
    finally:
        context.close()
