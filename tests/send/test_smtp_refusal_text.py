"""An SMTP server's refusal is a stranger's text: the ledger keeps it, and ``newsletter
status`` prints it, without the control characters that would drive the terminal (an
escape sequence that retitles or rewrites it, a NUL that ends a string early); the
send's own error line writes them out as escapes."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import Store
from newsletter.store.schema import campaigns
from newsletter.store.schema import ledger as ledger_rows
from newsletter.tokens import Signer
from tests.fakes.smtp import FakeSmtp
from tests.send.conftest import SEED

HOSTILE = "554 5.7.1 \x1b]0;owned\x07Rejected\x00 by \x1b[2Jpolicy"
CLEANED = "554 5.7.1 ]0;ownedRejected by [2Jpolicy"


def send_to_readers(
    configure: Callable[..., Config], smtp_server: FakeSmtp, store: Store, count: int
) -> list[int]:
    settings = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    configure(provider="smtp", smtp={**settings, "connections": 1})
    return [
        store.add(f"reader{n}@example.org", name=f"Reader {n}", topics=["research"]).id
        for n in range(count)
    ]


def ledger_error(store: Store, subscriber_id: int) -> str | None:
    with store.engine.connect() as connection:
        return connection.scalar(
            select(ledger_rows.c.error).where(ledger_rows.c.subscriber_id == subscriber_id)
        )


def test_a_refusal_of_one_reader_is_stored_and_shown_without_control_characters(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    shared_store: Store,
    secret: Signer,
) -> None:
    ids = send_to_readers(configure, smtp_server, shared_store, 3)
    smtp_server.refuse("reader1@example.org", HOSTILE)

    sent = runner.invoke(cli, ["send", SEED, "--yes"])
    status = runner.invoke(cli, ["status"])

    assert sent.exit_code == 0, sent.output
    assert "Sent 2, failed 1" in sent.output
    assert ledger_error(shared_store, ids[1]) == CLEANED
    assert f"error: reader1@example.org: {CLEANED}\n" in status.output
    for output in (sent.output, status.output):
        assert "\x1b" not in output and "\x00" not in output and "\x07" not in output


def test_a_relay_refusal_that_stops_the_campaign_is_stored_and_shown_cleaned(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    shared_store: Store,
    secret: Signer,
) -> None:
    send_to_readers(configure, smtp_server, shared_store, 2)
    smtp_server.refuse_every_recipient("554 5.7.1 \x1b]0;owned\x07Relay access\x00 denied")

    sent = runner.invoke(cli, ["send", SEED, "--yes"])
    status = runner.invoke(cli, ["status"])

    assert sent.exit_code == 1
    # The send's own error line quotes the refusal with its controls written out.
    assert "refused at recipient: 554 5.7.1 \\x1b]0;owned\\x07Relay access\\x00 denied" in (
        sent.output
    )
    assert "\x1b" not in sent.output and "\x00" not in sent.output
    with shared_store.engine.connect() as connection:
        stopped = connection.scalar(select(campaigns.c.last_error))
    assert stopped is not None
    assert "554 5.7.1 ]0;ownedRelay access denied; this is about the server" in stopped
    assert "  stopped: " in status.output
    assert "]0;ownedRelay access denied" in status.output
    assert "\x1b" not in status.output and "\x00" not in status.output
