"""``/u/<token>``: the unsubscribe link of every message, and RFC 8058 one-click."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient

from newsletter.models import Subscriber
from newsletter.tokens import Signer
from newsletter.web.context import Services
from tests.web.conftest import csrf_of, events_of

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def unsubscribe_path(site: Services, subscriber: Subscriber, campaign_id: int | None = 7) -> str:
    return f"/u/{site.signer.unsubscribe_token(subscriber.id, campaign_id, subscriber.link_key)}"


def status_of(site: Services, subscriber: Subscriber) -> str:
    current = site.store.get(subscriber.id)
    assert current is not None
    return current.status


def test_the_page_says_who_unsubscribes_from_what_and_changes_nothing(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    response = scanner.get(unsubscribe_path(site, subscriber))

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "ada@example.org" in page
    assert "Unsubscribe from Breastfeeding World?" in page
    assert '<form method="post">' in page
    assert f'href="{site.links.preferences(subscriber.id, subscriber.link_key)}"' in page
    assert status_of(site, subscriber) == "active"
    assert [event["event"] for event in events_of(site, subscriber.id)] == []


def test_one_click_post_urlencoded_unsubscribes_without_cookie_or_csrf(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    response = scanner.post(unsubscribe_path(site, subscriber, campaign_id=7), data=ONE_CLICK)

    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    record = site.store.describe(subscriber.email)
    assert record["status"] == "unsubscribed"
    assert record["unsubscribe_source"] == "one-click"
    assert record["unsubscribe_campaign_id"] == 7
    assert record["unsubscribed_at"] is not None


def test_one_click_post_multipart_unsubscribes(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    response = scanner.post(
        unsubscribe_path(site, subscriber),
        data=ONE_CLICK,
        content_type="multipart/form-data",
    )

    assert response.status_code == 200
    assert response.request.content_type.startswith("multipart/form-data")
    assert status_of(site, subscriber) == "unsubscribed"


def test_one_click_is_idempotent_and_never_redirects(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = unsubscribe_path(site, subscriber)
    answers = [scanner.post(path, data=ONE_CLICK) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert all("Location" not in answer.headers for answer in answers)
    unsubscribes = [e for e in events_of(site, subscriber.id) if e["event"] == "unsubscribed"]
    assert len(unsubscribes) == 1


def test_the_page_form_unsubscribes_with_its_csrf_token(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = unsubscribe_path(site, subscriber, campaign_id=None)
    token = csrf_of(client.get(path))

    response = client.post(path, data={"csrf_token": token, "action": "unsubscribe"})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You are unsubscribed" in page
    assert "Subscribe again" in page  # the confirmation offers to resubscribe
    record = site.store.describe(subscriber.email)
    assert (record["status"], record["unsubscribe_source"]) == ("unsubscribed", "unsubscribe-page")


def test_a_form_post_without_csrf_token_changes_nothing(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = unsubscribe_path(site, subscriber)
    client.get(path)  # the session cookie exists, but the form field is missing

    response = client.post(path, data={"action": "unsubscribe"})

    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert status_of(site, subscriber) == "active"


def test_resubscribing_from_the_confirmation_page(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = unsubscribe_path(site, subscriber)
    unsubscribed = client.post(path, data={"csrf_token": csrf_of(client.get(path))})
    assert status_of(site, subscriber) == "unsubscribed"

    response = client.post(
        path, data={"csrf_token": csrf_of(unsubscribed), "action": "resubscribe"}
    )

    assert response.status_code == 200
    assert "Welcome back" in response.get_data(as_text=True)
    assert status_of(site, subscriber) == "active"


def test_a_bounced_address_is_not_resubscribed_from_its_link(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    site.store.mark(subscriber.id, "bounced", reason="550 no such user")
    path = unsubscribe_path(site, subscriber)
    page = client.get(path)
    assert "Subscribe again" not in page.get_data(as_text=True)

    # A hand-made form post, with a valid CSRF token from another page.
    client.post(path, data={"csrf_token": csrf_of(client.get("/manage")), "action": "resubscribe"})

    assert status_of(site, subscriber) == "bounced"


def tampered(token: str) -> str:
    # Not the last character: its low bits are base64 padding, which decoding ignores.
    changed = "A" if token[-5] != "A" else "B"
    return token[:-5] + changed + token[-4:]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda signer, reader: tampered(
                signer.unsubscribe_token(reader.id, None, reader.link_key)
            ),
            id="tampered",
        ),
        pytest.param(
            lambda signer, reader: signer.unsubscribe_token(reader.id, None, reader.link_key)[:-6],
            id="truncated",
        ),
        pytest.param(
            lambda signer, reader: Signer("another-key").unsubscribe_token(
                reader.id, None, reader.link_key
            ),
            id="forged",
        ),
        pytest.param(
            lambda signer, reader: signer.preferences_token(reader.id, reader.link_key),
            id="foreign",
        ),
        pytest.param(lambda signer, reader: "x" * 2000, id="oversized"),
    ],
)
def test_a_bad_token_is_a_plain_404_that_leaks_nothing(
    scanner: FlaskClient, site: Services, subscriber: Subscriber, make_token: object
) -> None:
    token = make_token(site.signer, subscriber)  # type: ignore[operator]

    for response in (scanner.get(f"/u/{token}"), scanner.post(f"/u/{token}", data=ONE_CLICK)):
        page = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "This link is not valid" in page
        assert "ada@example.org" not in page and "Ada" not in page
    assert status_of(site, subscriber) == "active"


def test_a_genuine_link_of_an_erased_subscriber(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = unsubscribe_path(site, subscriber)
    site.store.forget(subscriber.email)

    page = scanner.get(path)
    one_click = scanner.post(path, data=ONE_CLICK)

    assert page.status_code == 200
    assert "You are not subscribed" in page.get_data(as_text=True)
    assert one_click.status_code == 200  # the mailbox provider's POST must not fail
    assert site.store.find(subscriber.email) is None


def test_the_one_click_answer_is_impersonal(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    response = scanner.post(unsubscribe_path(site, subscriber), data=ONE_CLICK)

    page = response.get_data(as_text=True)
    assert "You will receive no more issues of Breastfeeding World." in page
    assert subscriber.email not in page
    assert "Set-Cookie" not in response.headers


def test_one_click_posts_from_many_threads_at_once_all_count(app: Flask, site: Services) -> None:
    readers = [site.store.add(f"reader{n}@example.org", source="test") for n in range(40)]
    paths = [unsubscribe_path(site, reader) for reader in readers]

    def post(path: str) -> int:
        return app.test_client(use_cookies=False).post(path, data=ONE_CLICK).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, paths + paths))

    assert statuses == [200] * 80
    assert {status_of(site, reader) for reader in readers} == {"unsubscribed"}
