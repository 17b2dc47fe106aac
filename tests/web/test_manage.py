"""``/manage``: "email me my link", the same answer for every address."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from newsletter.web.context import Services
from tests.web.conftest import Outbox, csrf_of, link_in


def ask_for_link(client: FlaskClient, address: str, remote_addr: str = "127.0.0.1") -> TestResponse:
    token = csrf_of(client.get("/manage"))
    return client.post(
        "/manage",
        data={"csrf_token": token, "email": address},
        environ_base={"REMOTE_ADDR": remote_addr},
    )


def visible(response: TestResponse, address: str) -> str:
    """The page without what legitimately differs: the nonce and the address typed."""
    page = response.get_data(as_text=True).replace(address, "ADDRESS")
    return re.sub(r'nonce="[^"]+"', "", page)


def test_known_and_unknown_addresses_get_the_same_answer(
    client: FlaskClient, subscriber: Subscriber, outbox: Outbox
) -> None:
    known = ask_for_link(client, "ada@example.org")
    unknown = ask_for_link(client, "nobody@example.org")

    assert known.status_code == unknown.status_code == 200
    assert visible(known, "ada@example.org") == visible(unknown, "nobody@example.org")
    assert "If ada@example.org is on our list" in known.get_data(as_text=True)
    assert [message["To"].addresses[0].addr_spec for message in outbox.messages()] == [
        "ada@example.org"
    ]


def test_the_mailed_link_opens_the_preferences(
    client: FlaskClient, subscriber: Subscriber, outbox: Outbox
) -> None:
    ask_for_link(client, "ADA@example.org")
    [message] = outbox.messages()

    page = client.get(link_in(message, "/p/"))

    assert page.status_code == 200
    assert "For ada@example.org." in page.get_data(as_text=True)


def test_a_pending_subscriber_gets_the_confirmation_again(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    site.store.add("new@example.org", status="pending", source="test")

    ask_for_link(client, "new@example.org")

    [message] = outbox.messages()
    assert message["Subject"] == "Confirm your subscription to Breastfeeding World"


def test_a_complained_address_gets_no_mail(
    client: FlaskClient, site: Services, subscriber: Subscriber, outbox: Outbox
) -> None:
    site.store.mark(subscriber.id, "complained")

    response = ask_for_link(client, "ada@example.org")

    assert response.status_code == 200
    assert outbox.messages() == []


def test_one_address_gets_at_most_a_few_links_an_hour(
    client: FlaskClient, subscriber: Subscriber, outbox: Outbox
) -> None:
    # From many clients: the per-address limit protects the inbox, whoever asks.
    for n in range(6):
        ask_for_link(client, "ada@example.org", remote_addr=f"203.0.113.{n}")

    assert len(outbox.messages()) == 3


def test_an_invalid_address_is_shown_back_with_the_problem(client: FlaskClient) -> None:
    response = ask_for_link(client, "ada at example")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Enter an email address like name@example.org." in page
    assert 'value="ada at example"' in page
