"""The web app in the newsletter's language: pages, forms' errors and the mail it sends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from newsletter.config import Config
from newsletter.languages import SHIPPED
from newsletter.web.context import EXTENSION, Services
from tests.conftest import skip_or_fail
from tests.languages.leftovers import english_leftovers
from tests.render.test_accessibility import AXE, axe_violations
from tests.web.conftest import Outbox, csrf_of, link_in, text_of


@pytest.fixture
def german_app(web_config: Config, make_app: Callable[..., Flask]) -> Flask:
    return make_app(web_config.model_copy(update={"language": "de"}), {"TESTING": True})


def test_the_pages_speak_german_and_the_mail_too(german_app: Flask) -> None:
    client = german_app.test_client()
    site: Services = german_app.extensions[EXTENSION]
    outbox = Outbox(site)

    signup = client.get("/subscribe")
    page = signup.get_data(as_text=True)
    assert '<html lang="de" dir="ltr">' in page
    assert "<h1>Breastfeeding World abonnieren</h1>" in page
    assert "Ich bin einverstanden, diesen Newsletter per E-Mail zu erhalten." in page
    assert english_leftovers(page, "de") == []

    wrong = client.post("/subscribe", data={"email": "nope", "csrf_token": csrf_of(signup)})
    assert "Geben Sie eine E-Mail-Adresse wie name@example.org ein." in wrong.get_data(as_text=True)
    assert english_leftovers(wrong.get_data(as_text=True), "de") == []

    form = {
        "email": "grete@example.org",
        "topics": ["research"],
        "consent": "yes",
        "csrf_token": csrf_of(signup),
    }
    sent = client.post("/subscribe", data=form).get_data(as_text=True)
    assert "Wir haben eine Nachricht an grete@example.org gesendet." in sent
    assert english_leftovers(sent, "de") == []
    record = site.store.describe("grete@example.org")
    assert record["attributes"]["consent"].startswith("Ich bin einverstanden")

    [message] = outbox.messages()
    assert message["Subject"] == "Bestätigen Sie Ihr Abonnement von Breastfeeding World"
    assert text_of(message).startswith("Guten Tag,\n")
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert '<html lang="de" dir="ltr">' in html and ">Mein Abonnement bestätigen</a>" in html
    for part in (text_of(message), html):
        assert english_leftovers(part, "de") == []

    confirm = client.get(link_in(message, "/confirm/"))
    assert "<h1>Bestätigen Sie Ihr Abonnement</h1>" in confirm.get_data(as_text=True)
    done = client.post(link_in(message, "/confirm/"), data={"csrf_token": csrf_of(confirm)})
    assert "<h1>Sie sind angemeldet</h1>" in done.get_data(as_text=True)
    for path in ("/manage", "/", "/no-such-page"):
        shown = client.get(path).get_data(as_text=True)
        assert english_leftovers(shown, "de") == [], path


TRANSLATED = [language for language in SHIPPED if language != "en"]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_page_and_mail_of_the_app_is_in_each_shipped_language(
    language: str, web_config: Config, make_app: Callable[..., Flask]
) -> None:
    app = make_app(web_config.model_copy(update={"language": language}), {"TESTING": True})
    client = app.test_client()
    site: Services = app.extensions[EXTENSION]
    direction = "rtl" if language == "ar" else "ltr"
    ada = site.store.add("ada@example.org", name="Ada", topics=("research",), source="test")
    gone = site.store.add("bob@example.org", source="test")
    site.store.unsubscribe(gone.id, source="test")
    preferences = f"/p/{site.signer.preferences_token(ada.id, ada.link_key)}"
    pages = {
        "/subscribe": client.get("/subscribe"),
        "/manage": client.get("/manage"),
        "/": client.get("/"),
        "404": client.get("/no-such-page"),
        "bad link": client.get("/p/not-a-token"),
        "preferences": client.get(preferences),
        "unsubscribe": client.get(
            f"/u/{site.signer.unsubscribe_token(ada.id, None, ada.link_key)}"
        ),
        "unsubscribed": client.get(
            f"/u/{site.signer.unsubscribe_token(gone.id, None, gone.link_key)}"
        ),
    }
    signup = pages["/subscribe"]
    pages["form errors"] = client.post(
        "/subscribe", data={"email": "x" * 300, "csrf_token": csrf_of(signup)}
    )
    pages["check inbox"] = client.post(
        "/subscribe",
        data={
            "email": "new@example.org",
            "topics": ["research"],
            "consent": "yes",
            "csrf_token": csrf_of(signup),
        },
    )
    pages["saved"] = client.post(
        preferences,
        data={"action": "save", "name": "Ada", "csrf_token": csrf_of(pages["preferences"])},
    )
    pages["manage mail asked"] = client.post(
        "/manage", data={"email": "ada@example.org", "csrf_token": csrf_of(pages["/manage"])}
    )
    for name, response in pages.items():
        page = response.get_data(as_text=True)
        assert f'<html lang="{language}" dir="{direction}">' in page, name
        assert english_leftovers(page, language) == [], name

    confirm, manage = Outbox(site).messages()
    catalog = site.catalog
    assert confirm["Subject"] == catalog.gettext("Confirm your subscription to %(name)s") % {
        "name": "Breastfeeding World"
    }
    assert manage["Subject"] == catalog.gettext("Your link to manage %(name)s") % {
        "name": "Breastfeeding World"
    }
    for message in (confirm, manage):
        html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        assert f'<html lang="{language}" dir="{direction}">' in html
        for part in (text_of(message), html):
            assert english_leftovers(part, language) == []


PAGE_GEOMETRY = """() => {
    const main = document.querySelector('main').getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(document.querySelector('main h1'));
    const heading = range.getBoundingClientRect();
    return {
        scrollWidth: document.documentElement.scrollWidth,
        fromRight: main.right - heading.right,
        fromLeft: heading.left - main.left,
    };
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        skip_or_fail("axe-core is not installed (npm ci)")
    return AXE.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", [375, 700])
def test_arabic_pages_read_from_the_right_without_sideways_scrolling(
    browser: Any,
    axe_source: str,
    web_config: Config,
    make_app: Callable[..., Flask],
    width: int,
) -> None:
    app = make_app(web_config.model_copy(update={"language": "ar"}), {"TESTING": True})
    client = app.test_client()
    for path in ("/subscribe", "/manage", "/"):
        html = client.get(path).get_data(as_text=True)
        page = browser.new_page(viewport={"width": width, "height": 800})
        try:
            page.set_content(html, wait_until="load")
            shape = page.evaluate(PAGE_GEOMETRY)
        finally:
            page.close()
        assert shape["scrollWidth"] <= width, path
        assert shape["fromRight"] < 60 < shape["fromLeft"], path  # the heading starts at the right
        assert axe_violations(browser, axe_source, html, width, dark=False) == [], path
