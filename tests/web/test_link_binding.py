"""Links act only on the person they were issued to (issue 10, items 1 and 2).

An erased subscriber's links must never reach whoever comes next, even if that person
got the same id; and a signup becomes a subscriber only by confirming.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import update

from newsletter.models import Subscriber
from newsletter.store.schema import subscribers
from newsletter.web.context import Services
from tests.web.conftest import Outbox, csrf_of, link_in

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def give_id(site: Services, subscriber: Subscriber, new_id: int) -> Subscriber:
    """Move a row to another id: what an id reused by the database would look like."""
    with site.store.engine.begin() as connection:
        connection.execute(
            update(subscribers).where(subscribers.c.id == subscriber.id).values(id=new_id)
        )
    moved = site.store.get(new_id)
    assert moved is not None
    return moved


def test_ids_are_never_reused_after_the_newest_subscriber_is_erased(site: Services) -> None:
    site.store.add("first@example.org", source="test")
    newest = site.store.add("newest@example.org", source="test")
    site.store.forget("newest@example.org")

    newcomer = site.store.add("newcomer@example.org", status="pending", source="test")

    assert newcomer.id > newest.id


def test_an_erased_persons_links_never_act_on_someone_with_the_same_id(
    client: FlaskClient, scanner: FlaskClient, site: Services
) -> None:
    erased = site.store.add("erased@example.org", name="Erased", source="test")
    unsubscribe = f"/u/{site.signer.unsubscribe_token(erased.id, 1, erased.link_key)}"
    preferences = f"/p/{site.signer.preferences_token(erased.id, erased.link_key)}"
    confirm = f"/confirm/{site.signer.confirm_token(erased.id, erased.link_key)}"
    site.store.forget("erased@example.org")
    newcomer = site.store.add(
        "newcomer@example.org", name="Newcomer", status="pending", source="test"
    )
    newcomer = give_id(site, newcomer, erased.id)

    shown = client.get(preferences).get_data(as_text=True)
    token = csrf_of(client.get("/subscribe"))
    client.post(preferences, data={"csrf_token": token, "action": "save", "name": "Mallory"})
    client.post(confirm, data={"csrf_token": token})
    scanner.post(unsubscribe, data=ONE_CLICK)
    client.post(preferences, data={"csrf_token": token, "action": "unsubscribe"})

    assert "newcomer@example.org" not in shown and "Newcomer" not in shown
    assert "You are not subscribed" in shown
    record = site.store.describe("newcomer@example.org")
    assert (record["status"], record["name"], record["confirmed_at"]) == (
        "pending",
        "Newcomer",
        None,
    )
    assert client.get(confirm).status_code == 404


def test_a_never_confirmed_signup_cannot_subscribe_again_without_confirming(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    pending = site.store.add("pat@example.org", status="pending", source="signup-form")
    site.store.unsubscribe(pending.id, source="test")
    preferences = f"/p/{site.signer.preferences_token(pending.id, pending.link_key)}"
    unsubscribe = f"/u/{site.signer.unsubscribe_token(pending.id, None, pending.link_key)}"
    token = csrf_of(client.get(preferences))

    from_preferences = client.post(preferences, data={"csrf_token": token, "action": "resubscribe"})
    assert site.store.describe("pat@example.org")["status"] == "pending"
    site.store.unsubscribe(pending.id, source="test")
    client.post(unsubscribe, data={"csrf_token": token, "action": "resubscribe"})

    assert "Please confirm" in from_preferences.get_data(as_text=True)
    assert site.store.describe("pat@example.org")["status"] == "pending"
    mails = outbox.messages()
    assert len(mails) == 2
    link = link_in(mails[-1], "/confirm/")
    client.post(link, data={"csrf_token": csrf_of(client.get(link))})
    assert site.store.describe("pat@example.org")["status"] == "active"


def test_a_confirmed_subscriber_resubscribes_with_one_click(
    client: FlaskClient, site: Services, subscriber: Subscriber
) -> None:
    site.store.unsubscribe(subscriber.id, source="test")
    preferences = f"/p/{site.signer.preferences_token(subscriber.id, subscriber.link_key)}"

    client.post(
        preferences, data={"csrf_token": csrf_of(client.get(preferences)), "action": "resubscribe"}
    )

    assert site.store.describe("ada@example.org")["status"] == "active"
