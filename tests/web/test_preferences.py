"""``/p/<token>``: the preference center, from a mail footer or a mailed manage link."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from newsletter.models import Subscriber
from newsletter.web.context import Services
from tests.web.conftest import checked_topics, csrf_of

EIGHT_DAYS = 8 * 86400


def current(site: Services, subscriber: Subscriber) -> Subscriber:
    found = site.store.get(subscriber.id)
    assert found is not None
    return found


def test_the_footer_link_shows_name_and_topics(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    response = client.get(f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "For ada@example.org." in page
    assert 'value="Ada Lovelace"' in page
    assert checked_topics(response) == {"research": True, "stories": True, "events": False}
    assert '<label for="topic-events">Events</label>' in page


def test_saving_changes_name_and_topics(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}"
    token = csrf_of(client.get(path))

    response = client.post(
        path,
        data={"csrf_token": token, "action": "save", "name": "  Ada  King ", "topics": ["events"]},
    )

    assert response.status_code == 200
    assert "Your preferences are saved." in response.get_data(as_text=True)
    saved = current(site, subscriber)
    assert (saved.name, saved.topics, saved.status) == ("Ada King", ("events",), "active")


def test_leaving_every_topic_asks_to_unsubscribe_instead(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}"
    token = csrf_of(client.get(path))

    response = client.post(path, data={"csrf_token": token, "action": "save", "name": "Ada"})

    assert response.status_code == 400
    assert "Choose at least one topic, or unsubscribe from everything below." in (
        response.get_data(as_text=True)
    )
    assert current(site, subscriber).topics == ("research", "stories")


def test_unsubscribing_from_everything_then_coming_back(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}"

    left = client.post(
        path, data={"csrf_token": csrf_of(client.get(path)), "action": "unsubscribe"}
    )
    record = site.store.describe(subscriber.email)
    assert (record["status"], record["unsubscribe_source"]) == ("unsubscribed", "preference-center")
    assert "You are unsubscribed" in left.get_data(as_text=True)

    client.post(path, data={"csrf_token": csrf_of(left), "action": "resubscribe"})
    assert current(site, subscriber).status == "active"


def test_a_mailed_manage_link_works_until_it_expires(
    client: FlaskClient, site: Services, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = site.signer.manage_token(subscriber.id, subscriber.link_key)
    eight_days_ago = time.time() - EIGHT_DAYS
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: eight_days_ago)
        stale = site.signer.manage_token(subscriber.id, subscriber.link_key)

    assert client.get(f"/p/{fresh}").status_code == 200
    expired = client.get(f"/p/{stale}")
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400
    assert "This link to your preferences has expired." in page
    assert 'href="/manage"' in page
    assert "ada@example.org" not in page


def test_a_confirm_token_does_not_open_the_preferences(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    response = client.get(f"/p/{site.signer.confirm_token(subscriber.id, subscriber.link_key)}")

    assert response.status_code == 404
    assert "ada@example.org" not in response.get_data(as_text=True)


def test_a_name_with_markup_is_shown_as_text(client: FlaskClient, site: Services) -> None:
    mallory = site.store.add(
        "mallory@example.org", name='<script>alert("x")</script>', topics=("research",)
    )

    page = client.get(f"/p/{site.signer.preferences_token(mallory.id, mallory.link_key)}").get_data(
        as_text=True
    )

    assert "<script>alert" not in page
    assert 'value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"' in page


def test_a_post_without_csrf_token_saves_nothing(
    scanner: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    path = f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}"

    response = scanner.post(path, data={"action": "unsubscribe"})

    assert response.status_code == 400
    assert current(site, subscriber).status == "active"
