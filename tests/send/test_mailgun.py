"""Sending through the Mailgun provider, against the local Mailgun stand-in: what only
Mailgun does (escaping in recipient variables, its refusals, regions); what every HTTP
API provider does is in test_http_api_providers.py."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import Personalization
from newsletter.send import campaign_rows
from newsletter.send.providers import Batch, Content, Recipient, get_provider
from newsletter.send.providers.http_api import post
from newsletter.store import Store
from newsletter.tokens import Signer
from tests.fakes.mailgun import API_KEY, DOMAIN, FakeMailgun
from tests.send.arrivals import parts
from tests.send.conftest import SEED

STOPPED = (
    "; the campaign stopped and everyone not yet sent stays pending: send again once that is fixed"
)


@pytest.fixture
def mailgun(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMailgun]:
    monkeypatch.setenv("MAILGUN_API_KEY", API_KEY)
    with FakeMailgun() as fake:
        yield fake


def mailgun_config(
    configure: Callable[..., Config], fake: FakeMailgun, **mailgun: object
) -> Config:
    return configure(provider="mailgun", mailgun={"api_url": fake.url, "domain": DOMAIN, **mailgun})


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


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


def test_the_region_chooses_the_endpoint(configure: Callable[..., Config]) -> None:
    us = configure(provider="mailgun", mailgun={"domain": DOMAIN})
    eu = configure(provider="mailgun", mailgun={"domain": DOMAIN, "region": "eu"})

    assert us.mailgun.base_url == "https://api.mailgun.net"
    assert eu.mailgun.base_url == "https://api.eu.mailgun.net"


def test_without_a_domain_nothing_is_sent(configure: Callable[..., Config]) -> None:
    config = configure(provider="mailgun")

    with pytest.raises(ConfigError, match=r"mailgun\.domain is not set: give the sending domain"):
        get_provider(config)


def test_content_that_looks_like_form_data_arrives_as_written(
    configure: Callable[..., Config], mailgun: FakeMailgun
) -> None:
    # The request is multipart/form-data: the text, HTML and each reader's values
    # go as they are, so lines that look like a part's boundary or headers must not cut them.
    config = mailgun_config(configure, mailgun)
    text = 'Hi [[text:name]]\r\n--newsletter_0\r\nContent-Disposition: form-data; name="to"\r\n'
    content = Content.from_config(
        config, subject='Grüße -- "%"', html="<p>[[html:name]] &amp; ✓</p>", text=text
    )
    ann = Recipient(Personalization(email="ann@example.org", name="Ann --x ✓ 日本"))

    with get_provider(config) as provider:
        [delivery] = provider.send_batch(Batch(content, [ann]))

    assert delivery.status == "sent"
    [message] = mailgun.messages()
    assert message["Subject"] == 'Grüße -- "%"'
    plain, html = parts(message)
    assert plain.startswith("Hi Ann --x ✓ 日本\n--newsletter_0\nContent-Disposition: form-data")
    assert html == "<p>Ann --x ✓ 日本 &amp; ✓</p>\n"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="to"'),
        ("multipart/form-data", b'--b\r\nContent-Disposition: form-data; name="to"\r\n\r\nx\r\n'),
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--"),
        ("application/json", b'{"to": "ann@example.org"}'),
    ],
    ids=["cut-short", "no-boundary", "no-name", "json"],
)
def test_the_stand_in_refuses_a_body_that_is_not_the_form_it_says(
    mailgun: FakeMailgun, content_type: str, body: bytes
) -> None:
    headers = {"Authorization": "Basic " + _basic(f"api:{API_KEY}"), "Content-Type": content_type}
    answer = post(f"{mailgun.url}/v3/{DOMAIN}/messages", body, headers, timeout=5)
    assert answer.status == 400
    assert mailgun.messages() == []


def _basic(credentials: str) -> str:
    return base64.b64encode(credentials.encode()).decode()
