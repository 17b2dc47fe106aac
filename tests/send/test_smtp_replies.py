"""Real relay replies at RCPT and DATA: about one recipient, or about us (every message)."""

from __future__ import annotations

import pytest

from newsletter.send.providers.smtp_replies import (
    data_refusal_scope,
    is_no_such_user,
    is_policy_refusal,
    rcpt_refusal_scope,
    same_refusal,
)


@pytest.mark.parametrize(
    ("reply", "scope"),
    [
        # About the one address: fail it, go on.
        ("550 5.1.1 <a@example.net>: Recipient address rejected: User unknown", "recipient"),
        ("550-5.1.1 The email account that you tried to reach does not exist.", "recipient"),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", "recipient"),
        ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", "recipient"),
        ("552 5.2.2 The recipient's inbox is out of storage space", "recipient"),
        ("550 No such user here", "recipient"),
        ("554 5.7.1 Rejected by policy", "recipient"),
        ("550 5.1.1 <relay@example.net>: User unknown", "recipient"),  # the word is the address
        # About the relay or this client: stop, everyone stays pending.
        ("554 5.7.1 <a@example.net>: Relay access denied", "relay"),
        ("550 5.7.1 Unable to relay", "relay"),
        ("530 5.7.0 Authentication required", "relay"),
        ("504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname", "relay"),
        ("550 5.7.1 Client host [198.51.100.7] blocked using zen.spamhaus.org", "relay"),
        ("553 5.1.8 <letters@example.org>: Sender address rejected: Domain not found", "relay"),
        ("550 5.7.26 Unauthenticated email from example.org is not accepted (DMARC)", "relay"),
        ("451 4.3.0 Try again later", "relay"),  # 5.3/4.3: the mail system (a 5xx stops)
        ("550 Relaying denied", "relay"),
    ],
)
def test_a_refusal_at_rcpt_is_about_the_recipient_or_about_us(reply: str, scope: str) -> None:
    code, _, text = reply.partition(" ")
    code = code.split("-")[0]

    assert rcpt_refusal_scope(int(code), text) == scope


def test_only_addressing_refusals_are_no_such_user() -> None:
    assert is_no_such_user(550, "5.1.1 User unknown")
    assert is_no_such_user(550, "No such user here")
    assert not is_no_such_user(550, "5.7.1 Rejected by policy")
    assert not is_no_such_user(553, "5.1.8 Sender address rejected")
    assert not is_no_such_user(552, "5.2.2 Mailbox full")


@pytest.mark.parametrize(
    ("reply", "scope"),
    [
        ("550 5.1.1 User unknown", "recipient"),
        ("552 5.2.2 Mailbox full", "recipient"),
        ("552 5.3.4 Message size exceeds fixed limit", "relay"),
        ("552 5.2.3 Message exceeds maximum size", "relay"),
        ("554 5.7.1 Message rejected as spam", "relay"),
        ("554 Transaction failed", "relay"),
    ],
)
def test_a_refusal_after_data_stops_unless_it_names_the_mailbox(reply: str, scope: str) -> None:
    code, _, text = reply.partition(" ")

    assert data_refusal_scope(int(code), text) == scope


@pytest.mark.parametrize(
    ("reply", "own_address_reply", "everyone"),
    [
        # Postfix submission without a login: our own address gets the same answer.
        (
            "5.7.1 <a@example.net>: Recipient address rejected: Access denied",
            (554, "5.7.1 <bounces+1-1-x@example.org>: Recipient address rejected: Access denied"),
            True,
        ),
        # The recipient's own policy: our address is taken.
        (
            "5.7.1 <a@example.net>: Recipient address rejected: Access denied",
            (250, "2.1.5 Ok"),
            False,
        ),
        # Refused for something else.
        (
            "5.7.1 <a@example.net>: Recipient address rejected: Access denied",
            (550, "5.1.1 <bounces@example.org>: User unknown"),
            False,
        ),
    ],
)
def test_a_refusal_is_everyone_s_when_our_own_address_gets_it_too(
    reply: str, own_address_reply: tuple[int, str], everyone: bool
) -> None:
    assert is_policy_refusal(554, reply)
    assert same_refusal(reply, *own_address_reply) is everyone


def test_only_permanent_5_7_refusals_are_checked_against_our_own_address() -> None:
    assert not is_policy_refusal(550, "5.1.1 <a@example.net>: User unknown")
    assert not is_policy_refusal(450, "4.7.1 <a@example.net>: Greylisted")
    assert not is_policy_refusal(554, "Access denied")
