"""Sending through the Mailgun provider, against the local Mailgun stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import Personalization
from newsletter.send import campaign_rows
from newsletter.send.providers import Batch, Content, Recipient, get_provider
from newsletter.store import Store
from newsletter.store.schema import ledger
from newsletter.tokens import Signer
from tests.fakes.mailgun import API_KEY, DOMAIN, FakeMailgun
from tests.send.arrivals import check_copies, parts
from tests.send.conftest import SEED

READERS = [f"reader{n}@example.org" for n in range(100)]
STOPPED = (
    "; the campaign stopped and everyone not yet sent stays pending: send again once that is fixed"
)


@pytest.fixture
def mailgun(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMailgun]:
    monkeypatch.setenv("MAILGUN_API_KEY", API_KEY)
    with FakeMailgun() as fake:
        yield fake


@pytest.fixture
def on_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url


def mailgun_config(
    configure: Callable[..., Config], fake: FakeMailgun, **mailgun: object
) -> Config:
    return configure(provider="mailgun", mailgun={"api_url": fake.url, "domain": DOMAIN, **mailgun})


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


def test_a_campaign_goes_out_in_recipient_variable_batches_one_message_each(
    on_database: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    mailgun: FakeMailgun,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    mailgun_config(configure, mailgun, batch_size=40)
    ids = subscribers(100)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 100, failed 0, skipped 0, deferred 0, unknown 0" in result.output
    assert mailgun.batch_sizes == [40, 40, 20]
    assert mailgun.received_by() == dict.fromkeys(READERS, 1)
    campaign = campaign_rows.find_campaign(store, "stem-cells-in-breast-milk")
    assert campaign is not None
    # Every copy is personal: its own unsubscribe link, in the header and both parts.
    check_copies(mailgun.messages(), secret, campaign_id=campaign.id, subscriber_ids=ids)
    assert {v["campaign_id"] for v in mailgun.variables.values()} == {str(campaign.id)}
    assert sorted(int(v["subscriber_id"]) for v in mailgun.variables.values()) == ids
    with store.engine.connect() as connection:
        kept = set(connection.scalars(select(ledger.c.message_id)))
    assert kept == set(mailgun.message_ids)  # without Mailgun's angle brackets


def test_names_are_escaped_in_the_html_only(
    configure: Callable[..., Config], mailgun: FakeMailgun
) -> None:
    config = mailgun_config(configure, mailgun)
    content = Content.from_config(
        config, subject="Hello", html="<p>Hi [[html:name]]</p>", text="Hi [[text:name]]"
    )
    ann = Recipient(Personalization(email="ann@example.org", name='Ann <b>"A&B"</b>'))
    bob = Recipient(Personalization(email="bob@example.org", name="Bob"))

    with get_provider(config) as provider:
        provider.send_batch(Batch(content, [ann, bob]))

    [to_ann, to_bob] = mailgun.messages()
    assert parts(to_ann) == (
        'Hi Ann <b>"A&B"</b>\n',
        "<p>Hi Ann &lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;</p>\n",
    )
    assert parts(to_bob) == ("Hi Bob\n", "<p>Hi Bob</p>\n")
    assert to_ann["To"].addresses[0].display_name == 'Ann <b>"A&B"</b>'


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        (
            "key",
            "Error: Mailgun refused the batch (401: Forbidden); check MAILGUN_API_KEY (a "
            "private API key) and mailgun.region (an EU account's key is refused by the US "
            "endpoint, and the other way round)" + STOPPED,
        ),
        (
            "domain",
            f"Error: Mailgun refused the batch (404: Domain not found: {DOMAIN}); check "
            f"mailgun.domain ({DOMAIN}) and mailgun.region: Mailgun does not know this domain "
            "there" + STOPPED,
        ),
        (
            "unverified",
            f"Error: Mailgun refused the batch (403: Domain {DOMAIN} is not allowed to send: "
            "Please activate your Mailgun account. Check your inbox or log in to your control "
            "panel to resend the activation email.); verify the domain "
            f"{DOMAIN} in Mailgun (its DNS records) or enable it" + STOPPED,
        ),
        (
            "sandbox",
            "Error: Mailgun refused the batch (403: Domain sandbox123.mailgun.org is not "
            "allowed to send: Free accounts are for test purposes only. Please upgrade or add "
            "the address to authorized recipients in Account Settings.); a sandbox domain "
            "sends only to its authorised recipients: set mailgun.domain to your own verified "
            "domain" + STOPPED,
        ),
    ],
)
def test_an_account_or_domain_problem_stops_the_campaign_with_everyone_pending(
    runner: CliRunner,
    configure: Callable[..., Config],
    mailgun: FakeMailgun,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    fault: str,
    line: str,
) -> None:
    mailgun_config(configure, mailgun, batch_size=2)
    if fault == "key":
        mailgun.key = "another"
    elif fault == "domain":
        mailgun.domains.clear()
    elif fault == "unverified":
        mailgun.unverified.add(DOMAIN)
    else:
        mailgun.domains.add("sandbox123.mailgun.org")
        mailgun_config(configure, mailgun, batch_size=2, domain="sandbox123.mailgun.org")
    subscribers(5)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == line
    assert mailgun.requests == 1
    assert counts(store) == (0, 0, 0, 5)


def test_429_and_server_errors_are_retried_without_duplicates(
    runner: CliRunner,
    configure: Callable[..., Config],
    mailgun: FakeMailgun,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    mailgun_config(configure, mailgun)
    subscribers(5)
    mailgun.fail_next(429, headers={"Retry-After": "0"})
    mailgun.fail_next(500)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert mailgun.requests == 3
    assert mailgun.received_by() == dict.fromkeys(READERS[:5], 1)
    assert "mailgun: retry 1 of 3 in " in result.output


@pytest.mark.slow
@pytest.mark.parametrize("lost_answer", ["reset", "timeout"])
def test_a_batch_accepted_but_unanswered_is_unknown_and_never_sent_again(
    lost_answer: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    mailgun: FakeMailgun,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    mailgun_config(configure, mailgun, batch_size=4, timeout=2.0)
    subscribers(12)
    mailgun.normal_next()
    if lost_answer == "reset":
        mailgun.drop_next(deliver=True)
    else:
        mailgun.slow_next(4.0)

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 8, failed 0, skipped 0, deferred 0, unknown 4 in " in result.output
    assert "Mailgun's webhooks settle them" in result.output
    assert "Nothing to send" in again.output
    assert mailgun.requests == 3
    assert mailgun.received_by() == dict.fromkeys(READERS[:12], 1)
    assert counts(store) == (8, 0, 4, 0)


def test_the_region_chooses_the_endpoint(configure: Callable[..., Config]) -> None:
    us = configure(provider="mailgun", mailgun={"domain": DOMAIN})
    eu = configure(provider="mailgun", mailgun={"domain": DOMAIN, "region": "eu"})

    assert us.mailgun.base_url == "https://api.mailgun.net"
    assert eu.mailgun.base_url == "https://api.eu.mailgun.net"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "mailgun.domain is not set: give the sending domain"),
        ({"domain": DOMAIN}, "MAILGUN_API_KEY is not set: export it"),
    ],
)
def test_without_a_domain_or_key_nothing_is_sent(
    configure: Callable[..., Config], settings: dict[str, str], message: str
) -> None:
    config = configure(provider="mailgun", mailgun=settings)

    with pytest.raises(ConfigError, match=message):
        get_provider(config)
