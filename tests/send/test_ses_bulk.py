"""SES campaigns through SendBulkEmail and a stored template, against the SES v2
stand-in (tests/fakes/ses.py): moto has neither."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import boto3
import botocore.exceptions
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.schema import ledger
from newsletter.tokens import Signer
from tests.fakes.moto import CREDENTIALS, REGION
from tests.fakes.ses import SENDER, FakeSes
from tests.send.arrivals import check_copies
from tests.send.conftest import SEED

READERS = [f"reader{n}@example.org" for n in range(100)]
STOPPED = (
    "; the campaign stopped and everyone not yet sent stays pending: send again once that is fixed"
)


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSes]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with FakeSes() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        yield fake


def ses_config(configure: Callable[..., Config], **ses: object) -> Config:
    settings = {"rate_from_account": False, "configuration_set": "newsletter", **ses}
    return configure(provider="ses", ses=settings)


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


def test_each_reader_gets_their_own_links_and_headers_fifty_a_request(
    on_both: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    ses_config(configure)
    ids = subscribers(51)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 51, failed 0, skipped 0, deferred 0, unknown 0" in result.output
    assert sorted(ses.entries_per_request) == [1, 50]  # at once, on two connections
    assert ses.received_by() == dict.fromkeys(READERS[:51], 1)
    campaign = campaign_rows.find_campaign(store, "stem-cells-in-breast-milk")
    assert campaign is not None
    messages = ses.messages()
    # Each copy: its own one-click List-Unsubscribe (RFC 8058) and the same link in both
    # parts, no marker left, the shared List-Id and List-Unsubscribe-Post.
    check_copies([m for _, m in messages], secret, campaign_id=campaign.id, subscriber_ids=ids)
    assert {str(m["From"]) for _, m in messages} == {f"Breastfeeding World <{SENDER}>"}
    # The ids SES echoes in its events, and its message ids kept for them.
    tags = ses.tags()
    assert sorted(int(t["subscriber_id"]) for t in tags.values()) == sorted(ids)
    assert {t["campaign_id"] for t in tags.values()} == {str(campaign.id)}
    with store.engine.connect() as connection:
        kept = set(connection.scalars(select(ledger.c.message_id)))
    assert kept == set(tags)
    # One template for the campaign, deleted when the send ended.
    assert len(ses.templates_made) == 1
    assert ses.templates_deleted == ses.templates_made
    assert ses.templates == {}


def test_a_throttled_template_is_made_again_a_second_later(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    ses.throttle_templates = 1  # SES makes one template a second an account
    ses_config(configure)
    subscribers(3)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "did not take the campaign's template" not in result.output
    assert ses.entries_per_request == [3]  # in bulk all the same
    assert len(ses.templates_made) == 1


def test_a_refused_message_fails_that_reader_only(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    ses.entry_answers["reader2@example.org"] = [("MESSAGE_REJECTED", "Transaction failed")]
    ses_config(configure)
    subscribers(5)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 4, failed 1, skipped 0" in result.output
    assert counts(store) == (4, 1, 0, 0)
    assert "reader2@example.org" not in ses.received_by()


def test_a_request_refused_for_one_address_fails_that_reader_only(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    ses.illegal.add("reader1@example.org")  # SES refuses any request that carries it
    ses_config(configure)
    subscribers(4)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 3, failed 1, skipped 0" in result.output
    assert ses.received_by() == {r: 1 for r in READERS[:4] if r != "reader1@example.org"}
    assert counts(store) == (3, 1, 0, 0)


@pytest.mark.parametrize(
    ("setup", "line"),
    [
        (
            {"configuration_set": "missing"},
            "Error: SES refused the message (CONFIGURATION_SET_NOT_FOUND: Configuration set "
            "<missing> does not exist.); create the configuration set 'missing' in SES "
            f"({REGION}) or fix ses.configuration_set" + STOPPED,
        ),
        (
            {"senders": ()},
            "Error: SES refused the message (MessageRejected: Email address is not verified. "
            f"The following identities failed the check in region {REGION.upper()}: "
            f"{SENDER}); verify the From address or its domain in SES ({REGION})" + STOPPED,
        ),
    ],
    ids=["missing configuration set", "unverified sender"],
)
def test_an_account_problem_stops_the_campaign_with_everyone_pending(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    setup: dict[str, object],
    line: str,
) -> None:
    if "senders" in setup:
        ses.senders.clear()
        ses_config(configure)
    else:
        ses_config(configure, **setup)
    subscribers(60)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == line
    assert counts(store) == (0, 0, 0, 60)
    assert ses.templates == {}  # deleted all the same


def test_throttling_is_retried_and_each_reader_gets_one_message(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    ses.throttle_next(times=2)  # the whole request: TooManyRequestsException, twice
    ses.entry_answers["reader3@example.org"] = [("ACCOUNT_THROTTLED", "Maximum rate")]
    ses_config(configure)
    subscribers(5)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 5, failed 0, skipped 0, deferred 0, unknown 0" in result.output
    assert ses.received_by() == dict.fromkeys(READERS[:5], 1)
    assert ses.entries_per_request == [5, 1]  # then reader3 alone, once more
    assert counts(store) == (5, 0, 0, 0)


def test_a_request_whose_answer_is_lost_is_unknown_and_never_sent_again(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    ses.drop_next(deliver=True)  # SES took the request; its answer never came
    ses_config(configure)
    subscribers(3)

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 0, failed 0, skipped 0, deferred 0, unknown 3 in " in result.output
    assert "Nothing to send" in again.output
    assert ses.received_by() == dict.fromkeys(READERS[:3], 1)
    assert counts(store) == (0, 0, 3, 0)


def test_the_accounts_send_rate_caps_the_readers_a_request_and_paces_them(
    runner: CliRunner,
    configure: Callable[..., Config],
    ses: FakeSes,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    ses.max_send_rate = 2.0
    ses_config(configure, rate_from_account=True)
    subscribers(5)

    started = time.monotonic()
    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "ses: sending at most 2 a second (the account's send rate)" in result.output
    assert sorted(ses.entries_per_request) == [1, 2, 2]
    assert time.monotonic() - started >= 1.5  # five readers at two a second, not 3 requests


def test_the_stand_in_refuses_what_ses_refuses(ses: FakeSes) -> None:
    client = boto3.client("sesv2", endpoint_url=ses.url)
    content = {"Subject": "S", "Text": "Hi {{{ t_name }}}", "Html": "<p>{{{ h_name }}}</p>"}
    client.create_email_template(TemplateName="issue-7", TemplateContent=content)

    def refusal(**changes: object) -> str:
        entry = {
            "Destination": {"ToAddresses": ["a@example.org"]},
            "ReplacementEmailContent": {
                "ReplacementTemplate": {"ReplacementTemplateData": '{"t_name": "A"}'}
            },
        }
        request = {
            "FromEmailAddress": SENDER,
            "DefaultContent": {"Template": {"TemplateName": "issue-7"}},
            "BulkEmailEntries": [entry],
            **changes,
        }
        try:
            client.send_bulk_email(**request)
        except botocore.exceptions.ClientError as error:
            return str(error.response["Error"]["Code"])
        return "accepted"

    assert refusal() == "accepted"
    entry = {"Destination": {"ToAddresses": ["a@example.org"]}}
    assert refusal(BulkEmailEntries=[entry] * 51) == "BadRequestException"
    template = {"TemplateName": "issue-7", "Headers": [{"Name": "From", "Value": "x@y"}]}
    assert refusal(DefaultContent={"Template": template}) == "BadRequestException"
    assert refusal(DefaultContent={"Template": {"TemplateName": "gone"}}) == "NotFoundException"
    forged = boto3.client(
        "sesv2", endpoint_url=ses.url, aws_access_key_id="testing", aws_secret_access_key="x"
    )
    with pytest.raises(botocore.exceptions.ClientError, match="MissingAuthenticationToken"):
        forged.get_account()
    with pytest.raises(botocore.exceptions.ClientError, match="TemplateName"):
        client.create_email_template(TemplateName="issue 7!", TemplateContent=content)
    client.delete_email_template(TemplateName="issue-7")
    assert ses.templates == {}
