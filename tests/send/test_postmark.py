"""Sending through the Postmark provider, against the local Postmark stand-in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.send import campaign_rows
from newsletter.send.providers import get_provider
from newsletter.send.transactional import send_transactional
from newsletter.store import Store
from newsletter.store.schema import ledger
from newsletter.tokens import Signer
from tests.fakes.postmark import SERVER_TOKEN, FakePostmark
from tests.send.arrivals import check_copies
from tests.send.conftest import SEED

READERS = [f"reader{n}@example.org" for n in range(100)]


@pytest.fixture
def postmark(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostmark]:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", SERVER_TOKEN)
    with FakePostmark() as fake:
        yield fake


@pytest.fixture
def on_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The campaign's database: SQLite, and PostgreSQL where it is available."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url


def postmark_config(
    configure: Callable[..., Config], fake: FakePostmark, **postmark: object
) -> Config:
    return configure(provider="postmark", postmark={"api_url": fake.url, **postmark})


def message_ids(store: Store, campaign_id: int) -> set[str]:
    with store.engine.connect() as connection:
        return set(
            connection.scalars(
                select(ledger.c.message_id).where(ledger.c.campaign_id == campaign_id)
            )
        )


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


def test_a_campaign_goes_out_in_batches_of_personal_messages_on_the_broadcast_stream(
    on_database: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    postmark: FakePostmark,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    postmark_config(configure, postmark, batch_size=40)
    ids = subscribers(100)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 100, failed 0, skipped 0, deferred 0, unknown 0" in result.output
    assert postmark.batch_sizes == [40, 40, 20]
    assert postmark.received_by() == dict.fromkeys(READERS, 1)
    assert {m["MessageStream"] for m in postmark.accepted} == {"broadcast"}
    campaign = campaign_rows.find_campaign(store, "stem-cells-in-breast-milk")
    assert campaign is not None
    assert {m["Metadata"]["campaign_id"] for m in postmark.accepted} == {str(campaign.id)}
    assert sorted(int(m["Metadata"]["subscriber_id"]) for m in postmark.accepted) == ids
    check_copies(postmark.messages(), secret, campaign_id=campaign.id, subscriber_ids=ids)
    # Each message's own id is kept, for the webhooks to find the row.
    sent_ids = {m["MessageID"] for m in postmark.accepted}
    assert message_ids(store, campaign.id) == sent_ids
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


def test_429_and_server_errors_are_retried_without_duplicates(
    runner: CliRunner,
    configure: Callable[..., Config],
    postmark: FakePostmark,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    postmark_config(configure, postmark)
    subscribers(5)
    postmark.fail_next(429, headers={"Retry-After": "0"})
    postmark.fail_next(500)
    postmark.fail_next(503)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert postmark.requests == 4
    assert postmark.received_by() == dict.fromkeys(READERS[:5], 1)
    assert "postmark: retry 1 of 3 in " in result.output
    assert "after 429 " in result.output


def test_a_refused_connection_pauses_the_campaign_after_the_retries(
    runner: CliRunner,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", SERVER_TOKEN)
    with FakePostmark() as closed:
        url = closed.url  # nothing listens there any more
    configure(provider="postmark", postmark={"api_url": url})
    subscribers(3)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert "Postmark did not accept the batch after 4 attempts (last: cannot connect" in (
        result.output
    )
    assert counts(store) == (0, 0, 0, 3)


@pytest.mark.slow
@pytest.mark.parametrize("lost_answer", ["reset", "timeout"])
def test_a_batch_accepted_but_unanswered_is_unknown_and_never_sent_again(
    lost_answer: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    postmark: FakePostmark,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    postmark_config(configure, postmark, batch_size=4, timeout=2.0)
    subscribers(12)
    postmark.normal_next()
    if lost_answer == "reset":
        postmark.drop_next(deliver=True)
    else:
        postmark.slow_next(4.0)

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 8, failed 0, skipped 0, deferred 0, unknown 4 in " in result.output
    assert "Postmark's webhooks settle them" in result.output
    assert "Nothing to send" in again.output
    assert postmark.requests == 3
    assert postmark.received_by() == dict.fromkeys(READERS[:12], 1)
    assert counts(store) == (8, 0, 4, 0)


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


def test_without_the_token_nothing_is_sent(
    configure: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = configure(provider="postmark")

    with pytest.raises(ConfigError, match="POSTMARK_SERVER_TOKEN is not set: export it"):
        get_provider(config)


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
