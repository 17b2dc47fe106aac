"""What the providers that post batches to an HTTP API (Postmark, Mailgun, both through
``send/providers/http_api.py``; SendGrid, through the official ``sendgrid`` library)
promise, each against its local stand-in: a campaign goes
out in batches of the configured size, every reader once, each copy personal and
carrying its campaign and subscriber ids, the provider's message ids kept; "try later"
is retried without a duplicate; a refused connection pauses the campaign with everyone
pending; a batch whose answer is lost is ``unknown`` and never sent again; without its
key nothing is sent. Each provider's own ways are in test_postmark.py, test_mailgun.py and
test_sendgrid.py (SendGrid's 429, which waits for its rate limit's reset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.send import campaign_rows
from newsletter.send.providers import get_provider
from newsletter.store import Store
from newsletter.store.schema import ledger
from newsletter.tokens import Signer
from tests.fakes.http_api import FakeApi
from tests.fakes.mailgun import API_KEY, DOMAIN, FakeMailgun
from tests.fakes.postmark import SERVER_TOKEN, FakePostmark
from tests.fakes.sendgrid import API_KEY as SENDGRID_API_KEY
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.arrivals import check_copies
from tests.send.conftest import SEED

READERS = [f"reader{n}@example.org" for n in range(100)]


@dataclass
class Api:
    """A provider and its running stand-in."""

    name: str
    title: str  # as the provider's messages name it
    key_env: str
    fake: Any  # FakePostmark | FakeMailgun | FakeSendGrid
    settings: dict[str, object]  # what every config of it needs (its URL, a domain)
    settled_by: str  # what the summary says settles unknown copies

    def configure(self, configure: Callable[..., Config], **settings: object) -> Config:
        if self.name == "sendgrid" and "api_url" in settings:
            settings["api_host"] = settings.pop("api_url")
        return configure(provider=self.name, **{self.name: {**self.settings, **settings}})

    def batch_sizes(self) -> list[int]:
        if self.name == "sendgrid":
            return list(self.fake.personalization_counts)
        return list(self.fake.batch_sizes)

    def messages(self) -> list[EmailMessage]:
        if self.name == "sendgrid":
            return [message.message() for message in self.fake.messages()]
        return list(self.fake.messages())

    def tags(self) -> list[dict[str, str]]:
        """The ids each accepted message carries for the webhooks to echo."""
        if self.name == "postmark":
            return [message["Metadata"] for message in self.fake.accepted]
        if self.name == "sendgrid":
            return [message.custom_args for message in self.fake.messages()]
        return list(self.fake.variables.values())

    def message_ids(self) -> set[str]:
        if self.name == "postmark":
            return {message["MessageID"] for message in self.fake.accepted}
        if self.name == "sendgrid":  # one X-Message-Id a request, kept for each reader in it
            return {message_id for message_id, _ in self.fake.accepted}
        return set(self.fake.message_ids)


def stand_in(name: str) -> FakeApi | FakeSendGrid:
    if name == "sendgrid":
        return FakeSendGrid()
    return FakePostmark() if name == "postmark" else FakeMailgun()


KEYS = {
    "postmark": ("POSTMARK_SERVER_TOKEN", SERVER_TOKEN),
    "mailgun": ("MAILGUN_API_KEY", API_KEY),
    "sendgrid": ("SENDGRID_API_KEY", SENDGRID_API_KEY),
}


@pytest.fixture(params=["postmark", "mailgun", "sendgrid"])
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    name: str = request.param
    key_env, key = KEYS[name]
    monkeypatch.setenv(key_env, key)
    with stand_in(name) as fake:
        if name == "sendgrid":
            # Its events come from one Event Webhook, which the summary names as such.
            settles = "SendGrid's Event Webhook settles"
            yield Api(name, "SendGrid", key_env, fake, {"api_host": fake.url}, settles)
            return
        settings: dict[str, object] = {"api_url": fake.url}
        if name == "mailgun":
            settings["domain"] = DOMAIN
        title = name.capitalize()
        yield Api(name, title, key_env, fake, settings, f"{title}'s webhooks settle")


@pytest.fixture
def on_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The campaign's database: SQLite, and PostgreSQL where it is available."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


def test_a_campaign_goes_out_in_batches_one_personal_message_each(
    on_database: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    api: Api,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    api.configure(configure, batch_size=40)
    ids = subscribers(100)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 100, failed 0, skipped 0, deferred 0, unknown 0" in result.output
    assert api.batch_sizes() == [40, 40, 20]
    assert api.fake.received_by() == dict.fromkeys(READERS, 1)
    campaign = campaign_rows.find_campaign(store, "stem-cells-in-breast-milk")
    assert campaign is not None
    # Every copy is personal: its own unsubscribe link, in the header and both parts.
    check_copies(api.messages(), secret, campaign_id=campaign.id, subscriber_ids=ids)
    assert {tags["campaign_id"] for tags in api.tags()} == {str(campaign.id)}
    assert sorted(int(tags["subscriber_id"]) for tags in api.tags()) == ids
    # Each message's own id is kept (without Mailgun's angle brackets), for the webhooks.
    with store.engine.connect() as connection:
        kept = set(connection.scalars(select(ledger.c.message_id)))
    assert kept == api.message_ids()


def test_429_and_server_errors_are_retried_without_duplicates(
    runner: CliRunner,
    configure: Callable[..., Config],
    api: Api,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    api.configure(configure)
    subscribers(5)
    api.fake.fail_next(429, headers={"Retry-After": "0"})
    api.fake.fail_next(500)
    api.fake.fail_next(503)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert api.fake.requests == 4
    assert api.fake.received_by() == dict.fromkeys(READERS[:5], 1)
    assert f"{api.name}: retry 1 of 3 in " in result.output
    assert "after 429 " in result.output


def test_a_refused_connection_pauses_the_campaign_after_the_retries(
    runner: CliRunner,
    configure: Callable[..., Config],
    api: Api,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    with stand_in(api.name) as closed:
        url = closed.url  # nothing listens there any more
    api.configure(configure, api_url=url)
    subscribers(3)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert f"{api.title} did not accept the batch after 4 attempts (last: cannot connect" in (
        result.output
    )
    assert counts(store) == (0, 0, 0, 3)


@pytest.mark.slow
@pytest.mark.parametrize("lost_answer", ["reset", "timeout"])
def test_a_batch_accepted_but_unanswered_is_unknown_and_never_sent_again(
    lost_answer: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    api: Api,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    api.configure(configure, batch_size=4, timeout=2.0)
    subscribers(12)
    api.fake.normal_next()
    if lost_answer == "reset":
        api.fake.drop_next(deliver=True)
    else:
        api.fake.slow_next(4.0)

    result = runner.invoke(cli, ["send", SEED, "--yes"])
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 8, failed 0, skipped 0, deferred 0, unknown 4 in " in result.output
    assert "4 recipient(s) are unknown: the provider may have their message" in result.output
    assert f"{api.settled_by} them" in result.output
    assert "Nothing to send" in again.output
    assert api.fake.requests == 3
    assert api.fake.received_by() == dict.fromkeys(READERS[:12], 1)
    assert counts(store) == (8, 0, 4, 0)
    status = runner.invoke(cli, ["status"]).output
    assert "not finished: 4 unknown" in status


def test_without_the_key_nothing_is_sent(
    configure: Callable[..., Config], api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(api.key_env)
    config = api.configure(configure)

    with pytest.raises(ConfigError, match=f"{api.key_env} is not set: export it"):
        get_provider(config)
