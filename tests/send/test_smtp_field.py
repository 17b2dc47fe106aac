"""SMTP in the field (issue 13): return path, relay-wide refusals, TLS, EHLO, retrying
failed recipients and one provider per campaign; against aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner, Result

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.providers.smtp_connect import default_local_hostname
from newsletter.send.return_tokens import ReturnClaim, ReturnTokens
from newsletter.store import Store
from newsletter.tokens import Signer
from tests.fakes.smtp import FakeSmtp
from tests.mailbox.conftest import MESSAGES
from tests.send.conftest import SECRET, SEED
from tests.send.test_smtp import self_signed_certificate, smtp_config

BOUNCES = "bounces@breastfeedingworld.example"
MAILTO = re.compile(r"<mailto:unsubscribe@breastfeedingworld\.example\?subject=([^>]+)>")


@pytest.fixture
def stopped_send(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> Callable[[int], tuple[Result, list[int]]]:
    """Sends the seed issue to ``count`` new subscribers over one connection of a server
    the test has told to refuse; the campaign must stop with every one of them pending."""

    def send(count: int) -> tuple[Result, list[int]]:
        smtp_config(configure, smtp_server, connections=1)
        ids = subscribers(count)
        result = runner.invoke(cli, ["send", SEED, "--yes"])
        assert result.exit_code == 1
        assert campaign_rows.state_counts(store, 1)["pending"] == count
        return result, ids

    return send


def test_each_copy_has_a_signed_return_path_and_its_bounce_finds_the_subscriber(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    project: Path,
) -> None:
    smtp_config(configure, smtp_server)
    configure(bounces={"address": BOUNCES}, mailbox={"url": "maildir:returns"})
    ids = subscribers(3)

    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0

    tokens = ReturnTokens(SECRET)
    link_keys = {s.id: s.link_key for s in map(store.get, ids) if s is not None}
    senders = {}
    for arrival in smtp_server.arrivals:
        subscriber_id = ids[int(arrival.recipients[0].removeprefix("reader")[0])]
        claim = ReturnClaim(subscriber_id, 1)
        assert arrival.sender.startswith("bounces+") and arrival.sender.endswith(
            "@breastfeedingworld.example"
        )
        assert tokens.read_bounce(arrival.sender + " ", link_keys.get) == claim
        subject = MAILTO.search(str(arrival.message()["List-Unsubscribe"]))
        assert subject is not None
        assert tokens.read_mailto(unquote(subject[1]), link_keys.get) == claim
        assert (
            arrival.message()["From"].addresses[0].addr_spec == "letters@breastfeedingworld.example"
        )
        senders[arrival.recipients[0]] = arrival.sender

    # reader1's copy bounces later, as Postfix reports it to the return path.
    bounce = (MESSAGES / "postfix-user-unknown.eml").read_text(encoding="utf-8")
    bounce = bounce.replace("{VERP}", senders["reader1@example.org"])
    bounce = bounce.replace("{RCPT}", "reader1@example.org").replace("{N}", "1")
    for part in ("new", "cur", "tmp"):
        (project / "returns" / part).mkdir(parents=True)
    (project / "returns" / "new" / "1.bounce").write_text(bounce, encoding="utf-8")

    result = runner.invoke(cli, ["mailbox", "process"])

    assert result.exit_code == 0, result.output
    assert [store.get(i).status for i in ids] == ["active", "bounced", "active"]
    assert campaign_rows.state_counts(store, 1)["failed"] == 1


def test_a_relay_refusing_every_recipient_stops_the_campaign_with_everyone_pending(
    runner: CliRunner,
    smtp_server: FakeSmtp,
    stopped_send: Callable[[int], tuple[Result, list[int]]],
    store: Store,
) -> None:
    smtp_server.refuse_every_recipient("554 5.7.1 <reader0@example.org>: Relay access denied")

    result, ids = stopped_send(5)

    assert result.output.splitlines()[-1] == (
        f"Error: the SMTP server 127.0.0.1:{smtp_server.port} refused at recipient: 554 5.7.1 "
        "<reader0@example.org>: Relay access denied; this is about the server or this client, "
        "not the recipient (the server may want a login: set smtp.username and SMTP_PASSWORD, "
        "or let this host relay); the campaign stopped and everyone not yet sent stays "
        "pending: send again once that is fixed"
    )
    assert sum(smtp_server.rcpt_attempts.values()) == 1  # stopped at once
    assert {store.get(i).status for i in ids} == {"active"}

    smtp_server.refuse_every_recipient(None)  # the relay fixed
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert again.exit_code == 0, again.output
    assert len(smtp_server.received_by()) == 5


def test_a_policy_refusal_of_every_recipient_stops_the_campaign_with_everyone_pending(
    runner: CliRunner,
    smtp_server: FakeSmtp,
    stopped_send: Callable[[int], tuple[Result, list[int]]],
    store: Store,
) -> None:
    # Stock Postfix submission without a login: nothing in the words says "us".
    smtp_server.refuse_every_recipient(
        "554 5.7.1 <reader0@example.org>: Recipient address rejected: Access denied"
    )

    result, ids = stopped_send(5)

    assert result.output.splitlines()[-1] == (
        f"Error: the SMTP server 127.0.0.1:{smtp_server.port} refused at recipient: 554 5.7.1 "
        "<reader0@example.org>: Recipient address rejected: Access denied; this is about the "
        "server or this client, not the recipient (the server may want a login: set "
        "smtp.username and SMTP_PASSWORD, or let this host relay); the campaign stopped and "
        "everyone not yet sent stays pending: send again once that is fixed"
    )
    # The first reader, and the sender's own address asked for in the same transaction.
    assert smtp_server.rcpt_attempts["reader0@example.org"] == 1
    assert sum(smtp_server.rcpt_attempts.values()) == 2
    assert {store.get(i).status for i in ids} == {"active"}  # type: ignore[union-attr]

    smtp_server.refuse_every_recipient(None)
    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert again.exit_code == 0, again.output
    assert len(smtp_server.received_by()) == 5


def test_a_policy_refusal_of_one_recipient_fails_only_that_recipient(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server, connections=1)
    ids = subscribers(4)
    for address in ("reader0@example.org", "reader2@example.org"):
        smtp_server.refuse(
            address, f"554 5.7.1 <{address}>: Recipient address rejected: Access denied"
        )

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert campaign_rows.state_counts(store, 1)["failed"] == 2
    assert sorted(smtp_server.received_by()) == ["reader1@example.org", "reader3@example.org"]
    # Asked for once, before the relay had taken anyone; reader2 after reader1 was taken.
    assert sum(smtp_server.rcpt_attempts.values()) == 5
    assert {store.get(i).status for i in ids} == {"active"}  # type: ignore[union-attr]


def test_a_temporary_refusal_of_this_client_pauses_instead_of_deferring_everyone(
    smtp_server: FakeSmtp, stopped_send: Callable[[int], tuple[Result, list[int]]]
) -> None:
    smtp_server.refuse_every_recipient(
        "450 4.7.1 Client host rejected: cannot find your reverse hostname"
    )

    result, _ = stopped_send(5)

    assert "the campaign is paused: send again to resume" in result.output.splitlines()[-1]
    # One recipient's retries (1 + 3), not every recipient's.
    assert sum(smtp_server.rcpt_attempts.values()) == 4


def test_a_refused_ehlo_name_stops_the_campaign_and_the_name_can_be_set(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    stopped_send: Callable[[int], tuple[Result, list[int]]],
) -> None:
    smtp_server.refuse_every_recipient(
        "504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname"
    )

    result, _ = stopped_send(2)

    assert "refused at recipient: 504 5.5.2 <vm>: Helo command rejected" in result.output
    assert "set smtp.local_hostname to a fully qualified name" in result.output

    smtp_server.refuse_every_recipient(None)
    smtp_config(configure, smtp_server, local_hostname="news.breastfeedingworld.example")
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    assert smtp_server.ehlo_names[-1] == "news.breastfeedingworld.example"


def test_the_default_ehlo_name_is_fully_qualified(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> list[object]:
        raise OSError("no DNS here")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostname", lambda: "mail.breastfeedingworld.example")
    assert default_local_hostname("letters@example.org") == "mail.breastfeedingworld.example"
    # A bare host name (the "vm") is no name to give: the From domain is.
    monkeypatch.setattr(socket, "gethostname", lambda: "vm")
    assert default_local_hostname("letters@breastfeedingworld.example") == (
        "breastfeedingworld.example"
    )


def test_a_message_the_server_refuses_as_such_stops_the_campaign(
    smtp_server: FakeSmtp, stopped_send: Callable[[int], tuple[Result, list[int]]]
) -> None:
    smtp_server.answer_data("554 5.6.0 Message content rejected")

    result, _ = stopped_send(3)

    assert "refused at message: 554 5.6.0 Message content rejected" in result.output


@pytest.mark.slow
def test_a_certificate_that_cannot_be_verified_stops_at_once_and_ca_file_trusts_it(
    runner: CliRunner,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
    tmp_path: Path,
) -> None:
    certificate, server_context = self_signed_certificate(tmp_path)
    subscribers(2)
    with FakeSmtp(tls_context=server_context) as server:
        smtp_config(configure, server, security="starttls", connections=1)

        result = runner.invoke(cli, ["send", SEED, "--yes"])

        assert result.exit_code == 1
        assert result.output.splitlines()[-1] == (
            f"Error: the SMTP server 127.0.0.1:{server.port}'s certificate cannot be verified "
            "(self-signed certificate); fix the server's certificate, or set smtp.ca_file to "
            "the CA that signed it; the campaign stopped and everyone not yet sent stays "
            "pending: send again once that is fixed"
        )
        assert len(server.ehlo_names) == 1  # not retried as if the server were busy
        assert campaign_rows.state_counts(store, 1)["pending"] == 2

        smtp_config(configure, server, security="starttls", ca_file=str(certificate))
        again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert again.exit_code == 0, again.output
    assert len(server.arrivals) == 2


@pytest.mark.slow
def test_retry_failed_says_how_many_and_resends_those_still_subscribed(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server)
    subscribers(3)
    smtp_server.refuse("reader1@example.org", "552 5.2.2 Mailbox full")
    smtp_server.refuse("reader2@example.org", "550 5.1.1 No such user")  # bounced for good
    assert "Sent 1, failed 2" in runner.invoke(cli, ["send", SEED, "--yes"]).output
    smtp_server.script.refused.clear()

    rerun = runner.invoke(cli, ["send", SEED, "--yes"])
    assert rerun.output.splitlines()[-1] == (
        "Nothing to send: campaign 1 has no one left to send to. 2 recipient(s) failed; "
        "once the cause is fixed, --retry-failed sends them again."
    )

    result = runner.invoke(cli, ["send", SEED, "--yes", "--retry-failed"])

    assert result.exit_code == 0, result.output
    assert "Re-queue:   2 failed recipient(s) (--retry-failed)" in result.output
    assert "Sent 1, failed 0, skipped 1" in result.output
    assert smtp_server.received_by() == {"reader0@example.org": 1, "reader1@example.org": 1}


def test_a_campaign_keeps_its_provider_unless_switched_and_status_shows_each(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    smtp_config(configure, smtp_server, connections=1)
    subscribers(3)
    smtp_server.refuse("reader1@example.org", "530 5.7.0 Authentication required")
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 1  # 1 sent, then stopped
    configure(provider="outbox")

    refused = runner.invoke(cli, ["send", SEED, "--yes"])

    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: {SEED}: this issue's campaign 1 was sent through smtp, not outbox; resume it "
        "with --provider smtp, or add --switch-provider to send the rest through outbox\n"
    )

    switched = runner.invoke(cli, ["send", SEED, "--yes", "--switch-provider"])

    assert switched.exit_code == 0, switched.output
    assert "Switching:  from smtp, which this campaign used so far" in switched.output
    status = runner.invoke(cli, ["status"]).output.splitlines()
    assert status[0].startswith("stem-cells-in-breast-milk: campaign 1 via outbox")
    assert "  messages to providers: outbox 2, smtp 1 (accepted, refused or unknown)" in status


def test_status_says_handed_over_only_of_copies_the_provider_accepted(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    """``report``'s "handed over" is the ledger's ``sent``; what status counts per
    provider includes the copy it refused, so it goes by another name."""
    smtp_config(configure, smtp_server, connections=1)
    subscribers(3)
    smtp_server.refuse("reader2@example.org", "550 5.1.1 No such user")
    assert "Sent 2, failed 1" in runner.invoke(cli, ["send", SEED, "--yes"]).output

    status = runner.invoke(cli, ["status"]).output.splitlines()

    assert "  3 recipient(s): 0 pending, 0 in flight, 2 sent, 1 failed, 0 unknown, 0 skipped" in (
        status
    )
    assert "  messages to providers: smtp 3 (accepted, refused or unknown)" in status
    assert not [line for line in status if "handed over" in line]


def test_a_test_send_the_relay_refuses_says_nothing_of_a_campaign(
    runner: CliRunner,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    store: Store,
) -> None:
    smtp_config(configure, smtp_server, connections=1)
    smtp_server.refuse_every_recipient("554 5.7.1 <editor@example.org>: Relay access denied")

    result = runner.invoke(cli, ["send", SEED, "--test", "editor@example.org"])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: the SMTP server 127.0.0.1:{smtp_server.port} refused at recipient: 554 5.7.1 "
        "<editor@example.org>: Relay access denied; this is about the server or this client, "
        "not the recipient (the server may want a login: set smtp.username and SMTP_PASSWORD, "
        "or let this host relay); the test message was not sent (test sends are recorded "
        "nowhere): send the test again once that is fixed"
    )
    assert campaign_rows.list_campaigns(store) == []
