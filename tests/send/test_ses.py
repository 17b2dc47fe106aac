"""Sending through Amazon SES (v2 API, boto3) against moto in server mode on 127.0.0.1:
one raw ``SendEmail`` a reader (``ses.templates: false``, or where a template cannot
carry the message). The bulk path is tests/send/test_ses_bulk.py's."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.send import campaign_rows
from newsletter.send.providers import Batch, Content, Recipient
from newsletter.send.providers.ses import SesProvider
from newsletter.store import Store
from newsletter.store.schema import ledger
from newsletter.tokens import Signer
from tests.conftest import skip_or_fail
from tests.fakes.moto import CREDENTIALS, REGION, MotoServer, moto_server_command
from tests.send.arrivals import check_copies
from tests.send.conftest import SEED

SENDER = "letters@breastfeedingworld.example"
READERS = [f"reader{n}@example.org" for n in range(100)]
STOPPED = (
    "; the campaign stopped and everyone not yet sent stays pending: send again once that is fixed"
)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    command = moto_server_command()
    if command is None:
        skip_or_fail("moto_server is not installed (pip install 'moto[server]')")
    with MotoServer(command) as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto, emptied, with boto3 pointed at it and the From address verified."""
    moto_server.reset()
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    return moto_server


@pytest.fixture
def on_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    return database_url


def ses_config(configure: Callable[..., Config], **ses: object) -> Config:
    settings = {
        "rate_from_account": False,
        "configuration_set": "newsletter",
        "templates": False,
        **ses,
    }
    return configure(provider="ses", ses=settings)


def sent_messages(aws: MotoServer) -> list[tuple[str, EmailMessage]]:
    """(SES message id, message) of everything moto accepted."""
    with urllib.request.urlopen(f"{aws.url}/moto-api/data.json", timeout=60) as answer:
        data = json.load(answer)
    found = []
    for raw in data["ses"]["RawMessage"]:
        message = email.message_from_string(raw["raw_data"], policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append((raw["id"], message))
    return found


def received_by(aws: MotoServer) -> dict[str, int]:
    counted: dict[str, int] = {}
    for _, message in sent_messages(aws):
        address = message["To"].addresses[0].addr_spec
        counted[address] = counted.get(address, 0) + 1
    return counted


def counts(store: Store) -> tuple[int, int, int, int]:
    states = campaign_rows.state_counts(store, 1)
    return states["sent"], states["failed"], states["unknown"], states["pending"]


@pytest.mark.slow
def test_a_campaign_goes_out_one_raw_message_per_reader(
    on_database: str,
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    ses_config(configure)
    ids = subscribers(30)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 30, failed 0, skipped 0, deferred 0, unknown 0" in result.output
    assert received_by(aws) == dict.fromkeys(READERS[:30], 1)
    campaign = campaign_rows.find_campaign(store, "stem-cells-in-breast-milk")
    assert campaign is not None
    messages = sent_messages(aws)
    check_copies([m for _, m in messages], secret, campaign_id=campaign.id, subscriber_ids=ids)
    with store.engine.connect() as connection:
        kept = set(connection.scalars(select(ledger.c.message_id)))
    assert kept == {message_id for message_id, _ in messages}  # for the events to settle


@pytest.mark.parametrize(
    ("html", "notice"),
    [
        # moto has no SES v2 templates: the campaign goes as raw messages all the same.
        ("<p>Hello</p>", "ses: SES did not take the campaign's template (404: "),
        # Handlebars would read the braces: no template is even tried.
        ("<p>Write {{ name }} to greet</p>", None),
    ],
    ids=["no templates at this SES", "content with braces"],
)
def test_raw_messages_where_a_template_cannot_carry_the_campaign(
    configure: Callable[..., Config], aws: MotoServer, html: str, notice: str | None
) -> None:
    config = ses_config(configure, templates=True)
    content = Content.from_config(
        config,
        subject="Issue 7",
        html=html + '<a href="[[html:unsubscribe_url]]">Unsubscribe</a>',
        text="Hello\nUnsubscribe: [[text:unsubscribe_url]]",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    readers = [
        Recipient(
            Personalization(email=READERS[n], unsubscribe_url=f"https://example.org/u/{n}"),
            headers={"List-Unsubscribe": f"<https://example.org/u/{n}>"},
        )
        for n in range(2)
    ]
    notices: list[str] = []
    with SesProvider(config) as provider:
        provider.notify = notices.append
        deliveries = provider.send_batch(Batch(content, readers))

    assert [d.status for d in deliveries] == ["sent", "sent"]
    if notice is None:
        assert notices == []
    else:
        assert len(notices) == 1 and notices[0].startswith(notice), notices
    messages = sorted((m for _, m in sent_messages(aws)), key=lambda m: str(m["To"]))
    assert [m["List-Unsubscribe"] for m in messages] == [
        "<https://example.org/u/0>",
        "<https://example.org/u/1>",
    ]
    assert html in str(messages[0].get_body(preferencelist=("html",)).get_content())


@pytest.mark.slow
def test_the_accounts_send_rate_paces_the_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    ses_config(configure, rate_from_account=True)  # moto's account: 1 message a second
    subscribers(3)

    started = time.monotonic()
    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 2.0
    assert "ses: sending at most 1 a second (the account's send rate)" in result.output
    assert received_by(aws) == dict.fromkeys(READERS[:3], 1)


def test_an_unverified_sender_stops_the_campaign_with_everyone_pending(
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    aws.reset()  # nothing verified
    ses_config(configure)
    subscribers(6)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: SES refused the message (MessageRejected: Did not have authority to send "
        f"from email {SENDER}); verify the From address or its domain in SES ({REGION})" + STOPPED
    )
    assert counts(store) == (0, 0, 0, 6)


@pytest.mark.parametrize("templates", [False, True], ids=["raw", "bulk"])
def test_without_credentials_nothing_is_sent(
    templates: bool,
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    ses_config(configure, templates=templates)
    subscribers(2)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        "Error: no AWS credentials for SES: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    assert counts(store) == (0, 0, 0, 2)


def test_an_unreachable_endpoint_pauses_the_campaign_after_the_retries(
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    ses_config(configure, connections=1)
    subscribers(2)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert "SES did not accept the message after 4 attempts (last: cannot connect" in (
        result.output
    )
    assert counts(store) == (0, 0, 0, 2)


def test_a_message_whose_answer_is_lost_is_unknown_and_never_sent_again(
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _Silent() as silent:  # reads each request whole, never answers
        monkeypatch.setenv("AWS_ENDPOINT_URL", silent.url)
        ses_config(configure, connections=1, timeout=0.5)
        subscribers(2)

        result = runner.invoke(cli, ["send", SEED, "--yes"])
        again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 0, failed 0, skipped 0, deferred 0, unknown 2 in " in result.output
    assert "SES's events (through SNS) settle them" in result.output
    assert "Nothing to send" in again.output
    assert silent.requests == 2  # one per reader, none resent
    assert counts(store) == (0, 0, 2, 0)


@pytest.mark.parametrize(
    ("refusal", "outcome"),
    [
        (("BadRequestException", "Illegal address"), "Sent 4, failed 1, skipped 0"),
        (
            (
                "MessageRejected",
                "Email address is not verified. The following identities failed the check "
                "in region EU-WEST-1: reader2@example.org",
            ),
            "Error: SES refused the message (MessageRejected: Email address is not verified. "
            "The following identities failed the check in region EU-WEST-1: "
            "reader2@example.org); the SES account is in the sandbox in eu-west-1: it sends "
            "only to verified addresses; request production access in the SES console" + STOPPED,
        ),
    ],
)
def test_a_refused_address_fails_alone_and_the_sandbox_stops_the_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    aws: MotoServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    monkeypatch: pytest.MonkeyPatch,
    refusal: tuple[str, str],
    outcome: str,
) -> None:
    # moto has neither; a stand-in answers SES v2's JSON as SES does for reader2 only.
    with _Refusing({"reader2@example.org": refusal}) as ses:
        monkeypatch.setenv("AWS_ENDPOINT_URL", ses.url)
        ses_config(configure, connections=1)
        subscribers(5)

        result = runner.invoke(cli, ["send", SEED, "--yes"])

    if outcome.startswith("Error"):
        assert result.exit_code == 1
        assert result.output.splitlines()[-1] == outcome
        assert counts(store) == (2, 0, 0, 3)  # the two before it stay sent
    else:
        assert result.exit_code == 0, result.output
        assert outcome in result.output
        assert counts(store) == (4, 1, 0, 0)


class _Refusing:
    """SES v2's SendEmail over HTTP: accepts every reader but those it was told to refuse,
    answering them with SES's error code and message."""

    def __init__(self, refuse: dict[str, tuple[str, str]]) -> None:
        outer = self
        self.refuse = refuse

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                to = body["Destination"]["ToAddresses"][0]
                if to in outer.refuse:
                    code, message = outer.refuse[to]
                    answer, status = {"message": message}, 400
                    headers = {"x-amzn-ErrorType": code}
                else:
                    answer, status, headers = {"MessageId": f"id-{to}"}, 200, {}
                data = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _Refusing:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Silent:
    """A server that takes requests and never answers them."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests = 0
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.open.append(connection)
            connection.settimeout(2)
            try:
                if connection.recv(65536):
                    self.requests += 1
            except OSError:
                pass

    def __enter__(self) -> _Silent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        for connection in self.open:
            connection.close()
