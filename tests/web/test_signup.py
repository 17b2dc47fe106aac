"""``/subscribe`` and ``/confirm/<token>``: double opt-in that link scanners cannot trigger."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from newsletter.web.context import Services
from tests.web.conftest import Outbox, checked_topics, csrf_of, inputs_of, link_in, text_of


def sign_up(
    client: FlaskClient, *, remote_addr: str = "127.0.0.1", **fields: object
) -> TestResponse:
    form: dict[str, object] = {
        "email": "grace@example.org",
        "name": "Grace Hopper",
        "topics": ["research"],
        "consent": "yes",
        "csrf_token": csrf_of(client.get("/subscribe")),
    }
    form.update(fields)
    return client.post("/subscribe", data=form, environ_base={"REMOTE_ADDR": remote_addr})


def test_the_form_shows_the_consent_wording_and_a_hidden_honeypot(client: FlaskClient) -> None:
    response = client.get("/subscribe")

    page = response.get_data(as_text=True)
    assert (
        '<label for="consent">I agree to receive this newsletter by email. '
        "I can unsubscribe at any time.</label>" in page
    )
    assert checked_topics(response) == {"research": True, "stories": True, "events": True}
    honeypot = next(field for field in inputs_of(response) if field.get("name") == "website")
    assert honeypot["tabindex"] == "-1"
    assert '<div class="honeypot" aria-hidden="true">' in page


def test_signing_up_makes_a_pending_subscriber_and_mails_a_confirmation(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    response = sign_up(client)

    assert response.status_code == 200
    assert "We have sent a message to grace@example.org" in response.get_data(as_text=True)
    record = site.store.describe("grace@example.org")
    assert (record["status"], record["name"], record["topics"]) == (
        "pending",
        "Grace Hopper",
        ["research"],
    )
    assert record["subscribed_ip"] == "127.0.0.1"
    assert record["source"] == "signup-form"
    assert record["attributes"]["consent"] == site.consent_text
    [message] = outbox.messages()
    assert message["To"].addresses[0].addr_spec == "grace@example.org"
    assert message["Subject"] == "Confirm your subscription to Breastfeeding World"
    assert link_in(message, "/confirm/").startswith("/confirm/")


def test_a_link_scanner_fetching_the_confirmation_confirms_nothing(
    client: FlaskClient, scanner: FlaskClient, site: Services, outbox: Outbox
) -> None:
    sign_up(client)
    link = link_in(outbox.messages()[0], "/confirm/")

    fetched = [scanner.get(link) for _ in range(3)]

    assert all(response.status_code == 200 for response in fetched)
    assert site.store.describe("grace@example.org")["status"] == "pending"


def test_the_confirmation_page_waits_for_a_click_and_runs_no_script(
    scanner: FlaskClient, client: FlaskClient, outbox: Outbox
) -> None:
    sign_up(client)
    response = scanner.get(link_in(outbox.messages()[0], "/confirm/"))

    page = response.get_data(as_text=True)
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    assert "<script" not in page
    assert '<button type="submit">Confirm my subscription</button>' in page


def test_confirming_activates_and_records_time_and_ip_once(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    sign_up(client)
    link = link_in(outbox.messages()[0], "/confirm/")
    token = csrf_of(client.get(link))

    first = client.post(link, data={"csrf_token": token}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    replay = client.post(
        link, data={"csrf_token": token}, environ_base={"REMOTE_ADDR": "192.0.2.9"}
    )

    assert "You are subscribed" in first.get_data(as_text=True)
    assert replay.status_code == 200
    assert "You are already subscribed" in replay.get_data(as_text=True)
    record = site.store.describe("grace@example.org")
    assert (record["status"], record["confirmed_ip"]) == ("active", "192.0.2.7")
    assert record["confirmed_at"] is not None
    assert [event["event"] for event in record["events"]].count("confirmed") == 1


def test_an_erased_person_who_signs_up_again_is_back_once_they_confirm(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    site.store.add("grace@example.org", topics=["research"])
    site.store.forget("grace@example.org")

    sign_up(client)
    link = link_in(outbox.messages()[0], "/confirm/")
    assert site.store.describe("grace@example.org")["status"] == "pending"
    client.post(link, data={"csrf_token": csrf_of(client.get(link))})

    assert site.store.describe("grace@example.org")["status"] == "active"
    assert not site.store.is_suppressed("grace@example.org")


def test_an_expired_confirmation_link_confirms_nothing(
    client: FlaskClient, site: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = site.store.add("late@example.org", status="pending", source="test")
    eight_days_ago = time.time() - 8 * 86400
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: eight_days_ago)
        link = f"/confirm/{site.signer.confirm_token(pending.id, pending.link_key)}"
    token = csrf_of(client.get("/subscribe"))

    shown = client.get(link)
    posted = client.post(link, data={"csrf_token": token})

    assert shown.status_code == posted.status_code == 400
    assert "This confirmation link has expired." in shown.get_data(as_text=True)
    assert site.store.describe("late@example.org")["status"] == "pending"


def test_a_tampered_confirmation_link_is_a_plain_404(client: FlaskClient, site: Services) -> None:
    pending = site.store.add("eve@example.org", status="pending", source="test")
    link = f"/confirm/{site.signer.confirm_token(pending.id, pending.link_key)}"

    response = client.get(link[:-3] + "xyz")

    assert response.status_code == 404
    assert "eve@example.org" not in response.get_data(as_text=True)


def test_the_honeypot_pretends_success_and_does_nothing(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    response = sign_up(client, website="https://spam.example")

    assert "Check your inbox" in response.get_data(as_text=True)
    assert site.store.find("grace@example.org") is None
    assert outbox.messages() == []


def test_mistakes_are_shown_next_to_their_fields(client: FlaskClient, site: Services) -> None:
    response = sign_up(client, email="not-an-address", consent="", topics=[])

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert (
        '<p class="error" id="email-error">Enter an email address like name@example.org.</p>'
        in page
    )
    assert 'aria-describedby="email-error" aria-invalid="true"' in page
    assert "Tick the box to agree to receive the newsletter." in page
    assert "Choose at least one topic." in page
    assert 'value="not-an-address"' in page
    assert site.store.find("not-an-address") is None


def test_an_active_address_gets_no_second_subscriber_but_a_manage_link(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    existing = site.store.add("grace@example.org", name="Grace", topics=("events",), source="test")

    response = sign_up(client, email="Grace@example.org")

    assert "We have sent a message to Grace@example.org" in response.get_data(as_text=True)
    assert [s.id for s in site.store.subscribers()] == [existing.id]
    assert site.store.get(existing.id).status == "active"  # type: ignore[union-attr]
    [message] = outbox.messages()
    assert message["Subject"] == "Your link to manage Breastfeeding World"
    assert "which is already subscribed" in text_of(message)
    assert link_in(message, "/p/").startswith("/p/")


def test_signup_mails_to_one_address_are_limited_per_hour(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    answers = [sign_up(client) for _ in range(5)]

    assert all(answer.status_code == 200 for answer in answers)
    limit = site.config.web.mails_per_address_per_hour
    assert len(outbox.messages()) == limit == 3


def test_one_gmail_mailbox_under_many_spellings_shares_one_limit(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    # Gmail ignores dots and +tags, and googlemail.com is gmail.com: all one inbox.
    spellings = ["joe@gmail.com", "j.o.e@gmail.com", "joe@googlemail.com", "joe+x@gmail.com"]
    spellings += ["J.O.E+news@GoogleMail.com", "jo.e@gmail.com", "joe+y@gmail.com"]

    for email in spellings:
        assert sign_up(client, email=email).status_code == 200

    assert len(outbox.messages()) == site.config.web.mails_per_address_per_hour == 3
    # The limit's key is not what is stored: each address is kept as it was typed.
    assert site.store.find("j.o.e@gmail.com") is not None
    assert site.store.find("j.o.e@gmail.com").email == "j.o.e@gmail.com"


def test_dots_count_elsewhere_and_a_plus_tag_anywhere(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    for email in ["ann.lee@example.org", "annlee@example.org", "ann.lee+news@example.org"]:
        sign_up(client, email=email)
        sign_up(client, email=email)

    # Two mailboxes (dots are the address elsewhere), the +tag shares ann.lee's limit.
    assert len(outbox.messages()) == 5


@pytest.fixture
def strict_app(app: Flask, site: Services) -> Flask:
    site.config = site.config.model_copy(
        update={"web": site.config.web.model_copy(update={"forms_per_client_per_hour": 2})}
    )
    return app


def test_one_client_is_limited_to_a_few_signups_an_hour(strict_app: Flask, site: Services) -> None:
    client = strict_app.test_client()
    answers = [sign_up(client, email=f"reader{n}@example.org") for n in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "3600"
    assert "Too many requests" in answers[2].get_data(as_text=True)
    assert site.store.find("reader2@example.org") is None
    other = strict_app.test_client()
    other_answer = sign_up(other, email="elsewhere@example.org", remote_addr="198.51.100.4")
    assert other_answer.status_code == 200


def test_mail_from_the_forms_carries_no_text_typed_into_them(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    pitch = "Claim your prize at https://evil.example/win now"
    sign_up(client, email="victim@example.org", name=pitch)
    site.store.add("member@example.org", name=pitch, source="signup-form")
    sign_up(client, email="member@example.org", name="Anything")

    confirmation, manage_link = outbox.messages()
    for message in (confirmation, manage_link):
        text = text_of(message)
        html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        assert "evil.example" not in text + html and "prize" not in text + html
        assert "Anything" not in text + html
        assert text.startswith("Hello,")
        assert "evil" not in str(message["To"])
