"""Sending through the Postmark provider, against the local Postmark stand-in: what only
Postmark does (its streams and templates, its refusals); what every HTTP API provider
does is in test_http_api_providers.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.transactional import send_transactional
from newsletter.store import Store
from newsletter.tokens import Signer
from tests.fakes.postmark import SERVER_TOKEN, FakePostmark
from tests.send.conftest import SEED

READERS = [f"reader{n}@example.org" for n in range(100)]


@pytest.fixture
def postmark(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostmark]:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", SERVER_TOKEN)
    with FakePostmark() as fake:
        yield fake


def postmark_config(
    configure: Callable[..., Config], fake: FakePostmark, **postmark: object
) -> Config:
    return configure(provider="postmark", postmark={"api_url": fake.url, **postmark})


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


def test_a_campaign_goes_on_the_broadcast_stream_through_one_template_made_for_it(
    runner: CliRunner,
    configure: Callable[..., Config],
    postmark: FakePostmark,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    postmark_config(configure, postmark, batch_size=2)
    subscribers(5)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert {m["MessageStream"] for m in postmark.accepted} == {"broadcast"}
    # Through one template made for the campaign, deleted once it is sent.
    assert postmark.batch_paths == ["/email/batchWithTemplates"] * 3
    assert (postmark.templates_made, postmark.templates) == (1, {})


def test_an_inactive_or_invalid_recipient_fails_alone(
    runner: CliRunner,
    configure: Callable[..., Config],
    postmark: FakePostmark,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    postmark_config(configure, postmark)
    subscribers(5)
    postmark.inactive.add("reader2@example.org")

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 4, failed 1, skipped 0, deferred 0, unknown 0" in result.output
    assert "reader2@example.org" not in postmark.received_by()
    assert counts(store) == (4, 1, 0, 0)


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        (
            "sender",
            "Error: Postmark refused the batch (400: The 'From' address you supplied "
            "(letters@breastfeedingworld.example) is not a Sender Signature on your account. "
            "Please add and confirm this address in order to be able to use it in the 'From' "
            "field of your messages.); add the From address (or its domain) as a Sender "
            "Signature in Postmark and confirm it; the campaign stopped and everyone not yet "
            "sent stays pending: send again once that is fixed",
        ),
        (
            "token",
            "Error: Postmark refused the batch (10: No Account or Server API tokens were "
            "supplied in the HTTP headers. Please add a header for either "
            "X-Postmark-Server-Token or X-Postmark-Account-Token.); check "
            "POSTMARK_SERVER_TOKEN: it must be the Server API token of your Postmark server; "
            "the campaign stopped and everyone not yet sent stays pending: send again once "
            "that is fixed",
        ),
        (
            "stream",
            "Error: Postmark refused the batch (1235: The message stream for the provided "
            "'ID' (broadcast) was not found.); create the message stream 'broadcast' (a "
            "Broadcast stream) on your Postmark server, or set postmark.message_stream; the "
            "campaign stopped and everyone not yet sent stays pending: send again once that "
            "is fixed",
        ),
    ],
)
def test_an_account_or_sender_problem_stops_the_campaign_with_everyone_pending(
    runner: CliRunner,
    configure: Callable[..., Config],
    postmark: FakePostmark,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    fault: str,
    line: str,
) -> None:
    postmark_config(configure, postmark, batch_size=2)
    subscribers(5)
    if fault == "sender":
        postmark.senders.clear()
    elif fault == "token":
        postmark.token = "another"
    else:
        postmark.streams.discard("broadcast")

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == line
    # A bad token is refused when the campaign's template is made, before any batch.
    assert postmark.requests == (0 if fault == "token" else 1)
    assert counts(store) == (0, 0, 0, 5)

    if fault == "sender":  # fixed at Postmark: sending again sends everyone once
        postmark.senders.add("letters@breastfeedingworld.example")
        assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
        assert postmark.received_by() == dict.fromkeys(READERS[:5], 1)


def test_confirmation_mail_goes_on_the_transactional_stream(
    configure: Callable[..., Config], postmark: FakePostmark
) -> None:
    config = postmark_config(configure, postmark)

    delivery = send_transactional(
        config, to="new@example.org", subject="Confirm", html="<p>Hi</p>", text="Hi"
    )

    assert delivery.status == "sent"
    [message] = postmark.accepted
    assert message["MessageStream"] == "outbound"
    assert "Metadata" not in message


def test_the_stand_in_refuses_what_postmark_refuses(postmark: FakePostmark) -> None:
    from newsletter.send.providers.http_api import post

    headers = {"X-Postmark-Server-Token": SERVER_TOKEN, "Content-Type": "application/json"}
    message = {"From": "letters@breastfeedingworld.example", "To": "a@example.org",
               "Subject": "S", "TextBody": "t"}  # fmt: skip

    url = postmark.url + "/email/batch"
    too_many = post(url, json.dumps([message] * 501).encode(), headers, timeout=60)
    no_body = post(url, json.dumps([{**message, "TextBody": ""}]).encode(), headers, timeout=60)

    assert (too_many.status, too_many.json()["ErrorCode"]) == (422, 410)
    assert no_body.status == 200
    assert no_body.json()[0]["ErrorCode"] == 300
    assert postmark.received_by() == {}
