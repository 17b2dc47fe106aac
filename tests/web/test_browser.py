"""A reader's walk through the real app in headless Chromium: from the home page, sign
up, confirm from the mail in the outbox, change topics, unsubscribe."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.store import open_store_url
from tests.web.conftest import SECRET
from tests.web.live import LiveServer, serve

pytestmark = [pytest.mark.chromium, pytest.mark.slow]

CONSENT = "I agree to receive this newsletter by email. I can unsubscribe at any time."


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with serve(tmp_path, env={"NEWSLETTER_SECRET_KEY": SECRET}) as running:
        yield running


def confirmation_link(server: LiveServer) -> str:
    deadline = time.monotonic() + 60  # the mail thread, on a machine under load
    while not server.outbox():
        assert time.monotonic() < deadline, "no confirmation mail arrived in the outbox"
        time.sleep(0.1)
    [path] = server.outbox()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"http://\S+/confirm/\S+", text)
    assert match, text
    return match.group(0)


def note_failure(problems: list[str], response: Any) -> None:
    if response.status >= 400:
        problems.append(f"{response.status} {response.url}")


def test_sign_up_confirm_change_topics_unsubscribe(browser: Any, server: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and problems.append(f"{response.status} {response.url}")
        ),
    )

    page.goto(f"{server.url}/")  # the home page, where the site name leads
    page.get_by_text("No issue has gone out yet.").wait_for()
    page.get_by_role("link", name="Subscribe").click()
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_label("Name").fill("Rosa Reader")
    page.get_by_label("Events").uncheck()
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()

    # One click on the confirmation page (nothing presses it for a link scanner).
    page.goto(confirmation_link(server))
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()

    page.get_by_role("link", name="Manage your preferences").click()
    page.get_by_role("heading", name="Your preferences").wait_for()
    assert page.get_by_label("Research").is_checked()
    assert not page.get_by_label("Events").is_checked()
    page.get_by_label("Photo stories").uncheck()
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Your preferences are saved.").wait_for()
    assert not page.get_by_label("Photo stories").is_checked()

    page.get_by_role("button", name="Unsubscribe from everything").click()
    page.get_by_role("heading", name="Your preferences").wait_for()
    page.get_by_text("You are unsubscribed.").first.wait_for()
    context.close()

    store = open_store_url(server.database_url, ("research", "stories", "events"))
    try:
        record = store.describe("reader@example.org")
    finally:
        store.close()
    assert (record["name"], record["topics"], record["status"]) == (
        "Rosa Reader",
        ["research"],
        "unsubscribed",
    )
    assert record["confirmed_ip"] == "127.0.0.1"
    assert record["unsubscribe_source"] == "preference-center"
    assert problems == []  # no script error, no Content-Security-Policy violation


def every_link_in(message: email.message.EmailMessage) -> list[str]:
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    return sorted(set(re.findall(r'href="(http[^"]+)"', html) + re.findall(r"http://\S+", text)))


def test_a_link_scanner_running_script_confirms_no_one(browser: Any, server: LiveServer) -> None:
    cookie_jar = browser.new_context()
    page = cookie_jar.new_page()
    page.goto(f"{server.url}/subscribe")
    page.get_by_label("Email address").fill("scanned@example.org")
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    cookie_jar.close()
    confirmation_link(server)  # the mail is there
    [path] = server.outbox()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    links = every_link_in(message)  # type: ignore[arg-type]
    assert any("/confirm/" in link for link in links)

    # A mail gateway: a fresh browser, every link, script running, time to settle.
    scanner = browser.new_context()
    for link in links:
        scan = scanner.new_page()
        scan.goto(link)
        scan.wait_for_load_state("networkidle")
        scan.wait_for_timeout(300)
        scan.close()
    scanner.close()
    assert status_of(server, "scanned@example.org") == "pending"

    # The person: the same link, one click.
    person = browser.new_context()
    page = person.new_page()
    page.goto(confirmation_link(server))
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    person.close()
    assert status_of(server, "scanned@example.org") == "active"


def status_of(server: LiveServer, address: str) -> str:
    store = open_store_url(server.database_url, ("research", "stories", "events"))
    try:
        return str(store.describe(address)["status"])
    finally:
        store.close()


def test_keyboard_focus_starts_at_the_skip_link(browser: Any, server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/manage")

    page.keyboard.press("Tab")
    first = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    after_skip = page.evaluate("document.activeElement.id")
    page.close()

    assert first == "Skip to the content"
    assert after_skip == "email"
