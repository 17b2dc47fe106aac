"""Sending through the SendGrid provider, against the local fake SendGrid v3 API: what is
SendGrid's own (one request with the content once and a personalization per reader, the
429 that waits for its rate limit's reset, its error messages). What it promises as every
HTTP API provider does (batches, retries, lost answers, the key) is in
test_http_api_providers.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.send import campaign_rows
from newsletter.send.providers import Batch, Content, Recipient, get_provider
from newsletter.send.transactional import send_transactional
from newsletter.store import Store
from newsletter.tokens import Signer
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.arrivals import parts
from tests.send.conftest import SEED


def sendgrid_config(
    configure: Callable[..., Config], fake: FakeSendGrid, **sendgrid: object
) -> Config:
    return configure(provider="sendgrid", sendgrid={"api_host": fake.url, **sendgrid})


def test_each_request_carries_the_content_once_and_one_personalization_per_recipient(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid, asm_group_id=42)
    ids = subscribers(3)

    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0

    [(_, body)] = sendgrid.accepted
    html = next(block["value"] for block in body["content"] if block["type"] == "text/html")
    # Shared, markers left for SendGrid's substitutions. Links never change when
    # HTML-escaped, so the HTML uses the text marker: one substitution, not two.
    assert "[[text:unsubscribe_url]]" in html
    assert "[[html:unsubscribe_url]]" not in html
    assert "[[text:view_url]]" not in body["content"][0]["value"]  # the same for all: filled
    assert body["headers"] == {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Breastfeeding World <breastfeeding-world.news.breastfeedingworld.example>",
        "Feedback-ID": (
            "stem-cells-in-breast-milk:research:breastfeeding-world:breastfeedingworld.example"
        ),
    }
    assert body["tracking_settings"] == {
        "click_tracking": {"enable": False, "enable_text": False},
        "open_tracking": {"enable": False},
        "subscription_tracking": {"enable": False},
    }
    assert body["asm"] == {"group_id": 42}
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "reader0@example.org", "name": "Reader 0"}]
    assert first["custom_args"] == {"campaign_id": "1", "subscriber_id": str(ids[0])}
    assert first["substitutions"]["[[text:greeting_name]]"] == "Reader"
    assert first["headers"]["List-Unsubscribe"].startswith(
        f"<{first['substitutions']['[[text:unsubscribe_url]]']}>, <mailto:"
    )


def test_names_are_escaped_in_the_html_substitutions_only(
    configure: Callable[..., Config], sendgrid: FakeSendGrid
) -> None:
    config = sendgrid_config(configure, sendgrid)
    content = Content.from_config(
        config, subject="Hello", html="<p>Hi [[html:name]]</p>", text="Hi [[text:name]]"
    )
    recipient = Recipient(Personalization(email="ann@example.org", name='Ann <b>"A&B"</b>'))

    with get_provider(config) as provider:
        provider.send_batch(Batch(content, [recipient]))

    [message] = sendgrid.messages()
    assert message.html == "<p>Hi Ann &lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;</p>"
    assert message.text == 'Hi Ann <b>"A&B"</b>'


@pytest.mark.slow
def test_a_429_waits_for_the_rate_limit_reset_then_goes_on(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid)
    subscribers(5)
    sendgrid.rate_limit_next(reset_in=1.0)

    started = time.monotonic()
    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0
    assert sendgrid.answers == [429, 202]
    assert sum(sendgrid.received_by().values()) == 5


@pytest.mark.slow
def test_a_fault_mix_never_duplicates_and_accounts_for_everyone(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid, batch_size=5, timeout=2.0)
    subscribers(60)
    for _ in range(3):  # a quarter of the requests fault, in every way
        sendgrid.drop_next(deliver=True)
        sendgrid.fail_next(503)
        sendgrid.slow_next(4.0, deliver=True)
        sendgrid.drop_next(deliver=False)

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0 and again.exit_code == 0, result.output + again.output
    # Requests 1-4 of each round: lost answer (delivered); 503, then its retry's answer
    # lost (delivered); lost answer (not delivered). Batches 10-12 go through.
    assert "Sent 15, failed 0, skipped 0, deferred 0, unknown 45 in " in result.output
    assert sendgrid.requests == 3 * 4 + 3  # nothing resent, not even by the second run
    received = sendgrid.received_by()
    assert set(received.values()) == {1}  # no duplicates
    assert len(received) == 15 + 30
    counts = campaign_rows.state_counts(store, 1)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (15, 45, 0)


def test_a_400_stops_the_campaign_with_sendgrids_message_and_keeps_everyone_pending(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid, batch_size=2)
    subscribers(5)
    sendgrid.normal_next()
    sendgrid.fail_next(
        400,
        errors=[("from.email", "The from address does not match a verified Sender Identity.")],
    )

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: SendGrid refused the request (400): from.email: The from address does not "
        "match a verified Sender Identity; the campaign stopped and everyone not yet sent "
        "stays pending: send again once that is fixed"
    )
    assert sendgrid.requests == 2  # no retry of a bad request, and nothing after it
    assert campaign_rows.state_counts(store, 1) == {
        "pending": 3, "in_flight": 0, "sent": 2, "failed": 0, "unknown": 0, "skipped": 0
    }  # fmt: skip

    # Fixed on SendGrid's side: sending again resumes with the three left.
    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert result.exit_code == 0, result.output
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(5)}


def test_retries_running_out_pause_the_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid)
    subscribers(2)
    sendgrid.fail_next(500, times=4)  # the first try and three retries

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: SendGrid did not accept the batch after 4 attempts (last: 500 internal "
        "error); the campaign is paused: send again to resume"
    )
    assert campaign_rows.state_counts(store, 1)["pending"] == 2


def test_a_bad_api_key_names_the_variable(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid)
    subscribers(1)
    sendgrid.api_key = "SG.another-key"

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: SendGrid refused the API key (401: The provided authorization grant is "
        "invalid, expired, or revoked); check SENDGRID_API_KEY and that the key may send "
        "mail; the campaign stopped and everyone not yet sent stays pending: send again once "
        "that is fixed"
    )


def test_sendgrid_without_a_secret_key_is_refused(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
) -> None:
    sendgrid_config(configure, sendgrid)
    subscribers(1)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: NEWSLETTER_SECRET_KEY is not set: links in mail")
    assert sendgrid.requests == 0


def test_transactional_mail_has_no_list_headers_and_no_unsubscribe_group(
    configure: Callable[..., Config], sendgrid: FakeSendGrid
) -> None:
    config = sendgrid_config(configure, sendgrid, asm_group_id=42)

    delivery = send_transactional(
        config,
        to="new@example.org",
        subject="Confirm your subscription",
        html="<p>Please confirm</p>",
        text="Please confirm",
    )

    assert delivery.status == "sent" and delivery.message_id
    [message] = sendgrid.messages()
    assert "asm" not in message.request
    parsed = message.message()
    assert parsed["Subject"] == "Confirm your subscription"
    assert parsed["List-Unsubscribe"] is None
    assert parts(parsed) == ("Please confirm\n", "<p>Please confirm</p>\n")


def test_non_ascii_text_arrives_intact_in_the_utf8_request_body(
    configure: Callable[..., Config], sendgrid: FakeSendGrid
) -> None:
    config = sendgrid_config(configure, sendgrid)

    send_transactional(
        config,
        to="zoe@example.org",
        subject="Bienvenue, Zoë: ça commence 🎉",
        html="<p>Grüße aus Köln</p>",
        text="Grüße aus Köln",
    )

    [message] = sendgrid.messages()
    parsed = message.message()
    assert parsed["Subject"] == "Bienvenue, Zoë: ça commence 🎉"
    assert parts(parsed) == ("Grüße aus Köln\n", "<p>Grüße aus Köln</p>\n")


def test_json_summary(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    sendgrid_config(configure, sendgrid)
    subscribers(3)

    result = runner.invoke(cli, ["send", SEED, "--yes", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sent"] == 3
    assert summary["totals"]["sent"] == 3
    assert summary["provider"] == "sendgrid"


def test_debug_logging_shows_no_recipient_address(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    secret: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The sendgrid library logs every request body at DEBUG: addresses and personal
    # links must not end up in an application's logs when someone turns debugging on.
    sendgrid_config(configure, sendgrid)
    subscribers(3)

    with caplog.at_level(logging.DEBUG, logger="python_http_client"):
        result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(3)}
    payload_lines = [
        record.getMessage() for record in caplog.records if "PAYLOAD" in record.getMessage()
    ]
    assert payload_lines and all("bytes>" in line for line in payload_lines)
    assert "reader0@example.org" not in caplog.text


def test_a_missing_api_key_is_refused_before_the_plan_and_starts_nothing(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sendgrid_config(configure, sendgrid)
    subscribers(2)
    monkeypatch.delenv("SENDGRID_API_KEY")

    for command in (["send", SEED, "--yes"], ["send", SEED, "--test", "me@example.org"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 1
        assert result.output == (
            "Error: SENDGRID_API_KEY is not set: export it with a SendGrid API key that has "
            "the Mail Send permission (sendgrid.api_key_env names the variable)\n"
        )
    assert campaign_rows.find_campaign(store, "stem-cells-in-breast-milk") is None
    assert sendgrid.requests == 0


def test_a_test_send_whose_retries_run_out_says_nothing_of_a_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    store: Store,
) -> None:
    sendgrid_config(configure, sendgrid)
    sendgrid.fail_next(500, times=4)

    result = runner.invoke(
        cli, ["send", SEED, "--test", "editor@example.org", "--test", "proof@example.net"]
    )

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: SendGrid did not accept the batch after 4 attempts (last: 500 internal "
        "error); the 2 test messages were not sent (test sends are recorded nowhere): send "
        "the test again once that is fixed"
    )
    assert campaign_rows.list_campaigns(store) == []
