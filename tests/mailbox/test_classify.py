"""What a returned message is, and whom it is about: only a valid signed token says who."""

from __future__ import annotations

import pytest

from newsletter.send.mailbox.classify import classify
from newsletter.send.return_tokens import ReturnClaim, ReturnTokens
from tests.mailbox.conftest import BOUNCE_ADDRESS, LINK_KEY, Returned, fill, link_keys


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("postfix-user-unknown", "hard_bounce", "5.1.1 smtp; 550 5.1.1"),
        ("exim-failed", "hard_bounce", "bounced"),
        ("gmail-no-such-user", "hard_bounce", "5.1.1 smtp; 550-5.1.1 The email account"),
        ("microsoft-recipient-not-found", "hard_bounce", "5.1.10 smtp;550 5.1.10 RESOLVER"),
        ("postfix-delayed", "soft_bounce", "4.2.2 smtp; 452 4.2.2 Mailbox full"),
        ("gmail-policy-block", "blocked", "5.7.1 smtp; 550-5.7.1 [203.0.113.25 12] Our system"),
        ("mdaemon-user-unknown", "hard_bounce", "bounced"),  # Precedence: bulk
        ("gmail-over-quota", "soft_bounce", "5.2.2 smtp; 552-5.2.2"),
        ("microsoft-jmrp-complaint", "complaint", "feedback report: abuse"),
        ("mailto-unsubscribe", "unsubscribe", "mailto"),
    ],
)
def test_returned_mail_is_recognised_and_mapped_to_its_subscriber_and_campaign(
    returned: Returned, tokens: ReturnTokens, name: str, kind: str, reason: str
) -> None:
    result = classify(returned(name, 42, 7), tokens, link_keys)
    # As a Maildir file holds it: LF line ends.
    from_maildir = classify(returned(name, 42, 7).replace(b"\r\n", b"\n"), tokens, link_keys)

    assert (result.kind, result.claim) == (kind, ReturnClaim(42, 7))
    assert result.reason.startswith(reason)
    assert (from_maildir.kind, from_maildir.claim, from_maildir.reason[:40]) == (
        kind,
        ReturnClaim(42, 7),
        result.reason[:40],
    )


@pytest.mark.parametrize("name", ["out-of-office", "question"])
def test_auto_replies_and_other_mail_are_left_alone(
    returned: Returned, tokens: ReturnTokens, name: str
) -> None:
    expected = "auto_reply" if name == "out-of-office" else "other"
    assert classify(returned(name, 42, 7), tokens, link_keys).kind == expected


@pytest.mark.parametrize(
    "name", ["postfix-user-unknown", "gmail-no-such-user", "microsoft-jmrp-complaint"]
)
def test_a_bounce_or_complaint_signed_with_another_key_names_nobody(
    tokens: ReturnTokens, name: str
) -> None:
    forged = fill(name, 42, 7, tokens=ReturnTokens("someone else's key"))

    result = classify(forged, tokens, link_keys)

    assert (result.kind, result.claim) == ("unverified", None)


def test_a_forged_mailto_unsubscribe_changes_nobody(tokens: ReturnTokens) -> None:
    forged = fill("mailto-unsubscribe", 42, 7, tokens=ReturnTokens("guess"))
    # The real token of subscriber 42, its campaign changed: the signature no longer fits.
    tampered = fill("mailto-unsubscribe", 42, 7, tokens=tokens).replace(b" 42-7-", b" 42-8-")

    assert classify(forged, tokens, link_keys).kind == "unverified"
    assert classify(tampered, tokens, link_keys).kind == "unverified"


def test_tokens_survive_a_mail_system_that_changes_the_case_of_the_address(
    tokens: ReturnTokens,
) -> None:
    # The longest id and link key the store makes: the key is signed, not carried.
    sender = tokens.envelope_sender(BOUNCE_ADDRESS, 10**18 - 1, "x" * 16, 10**18 - 1)
    local, _, domain = sender.partition("@")

    assert len(local) <= 64  # RFC 5321's limit for a local part
    sender = tokens.envelope_sender(BOUNCE_ADDRESS, 42, LINK_KEY, 7)
    local, _, domain = sender.partition("@")
    assert tokens.read_bounce(f"<{sender.upper()}>", link_keys) == ReturnClaim(42, 7)
    assert tokens.read_bounce(f"<{local}x@{domain}>", link_keys) is None
    subject = tokens.mailto_subject(42, LINK_KEY, None).upper()
    assert tokens.read_mailto(subject, link_keys) == ReturnClaim(42, None)


def test_an_encoded_subject_from_a_mail_client_still_unsubscribes(
    returned: Returned, tokens: ReturnTokens
) -> None:
    subject = tokens.mailto_subject(42, LINK_KEY, 7)
    message = returned("mailto-unsubscribe", 42, 7).replace(
        subject.encode(), f"=?utf-8?q?{subject.replace(' ', '_')}?=".encode()
    )

    assert classify(message, tokens, link_keys).claim == ReturnClaim(42, 7)


@pytest.mark.parametrize(
    "name", ["postfix-user-unknown", "microsoft-jmrp-complaint", "mailto-unsubscribe"]
)
def test_a_token_fits_only_the_subscriber_who_holds_its_link_key_now(
    returned: Returned, tokens: ReturnTokens, name: str
) -> None:
    message = returned(name, 42, 7)

    erased = classify(message, tokens, {}.get)  # no row with id 42 any more
    reused = classify(message, tokens, {42: "someone-else"}.get)  # 42 is someone new

    assert (erased.kind, erased.claim) == ("unverified", None)
    assert (reused.kind, reused.claim) == ("unverified", None)


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.7.1", "550 5.7.1 Email rejected per DMARC policy for example.org", "blocked"),
        (
            "5.7.1",
            "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked "
            "using zen.spamhaus.org",
            "blocked",
        ),
        (
            "4.7.0",
            "421 4.7.0 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail",
            "blocked",
        ),  # a deferral for reputation: not a soft bounce
        ("5.0.0", "550 Message rejected as spam by Content Filtering", "blocked"),
        ("5.7.1", "550 5.7.1 Unable to relay for reader42@example.net", "hard_bounce"),
        ("5.1.1", "550 5.1.1 mailbox blocked: no such user", "hard_bounce"),
        ("5.2.2", "552 5.2.2 Mailbox full", "soft_bounce"),
    ],
)
def test_a_policy_block_is_blocked_not_a_bounce(
    returned: Returned, tokens: ReturnTokens, status: str, diagnostic: str, kind: str
) -> None:
    message = returned("postfix-user-unknown", 42, 7).replace(
        b"Status: 5.1.1", f"Status: {status}".encode()
    )
    start = message.index(b"Diagnostic-Code:")
    end = message.index(b"\r\n", start)
    while message[end + 2 : end + 3] in (b" ", b"\t"):  # folded lines of the same field
        end = message.index(b"\r\n", end + 2)
    message = message[:start] + f"Diagnostic-Code: smtp; {diagnostic}".encode() + message[end:]
    if status.startswith("4"):
        message = message.replace(b"Action: failed", b"Action: delayed")

    result = classify(message, tokens, link_keys)

    assert (result.kind, result.claim) == (kind, ReturnClaim(42, 7))


def test_a_verified_mailto_unsubscribe_counts_even_when_auto_generated(
    returned: Returned, tokens: ReturnTokens
) -> None:
    # As Gmail's and Apple Mail's one-click unsubscribe by mail sends it.
    message = returned("mailto-unsubscribe", 42, 7).replace(
        b"MIME-Version:", b"Auto-Submitted: auto-generated\r\nPrecedence: bulk\r\nMIME-Version:"
    )

    result = classify(message, tokens, link_keys)

    assert (result.kind, result.claim) == ("unsubscribe", ReturnClaim(42, 7))


def test_an_out_of_office_with_only_a_bulk_precedence_is_still_an_auto_reply(
    returned: Returned, tokens: ReturnTokens
) -> None:
    message = (
        returned("out-of-office", 42, 7)
        .replace(b"Auto-Submitted: auto-replied\r\n", b"Precedence: bulk\r\n")
        .replace(b"X-Autoreply: yes\r\n", b"")
    )

    assert classify(message, tokens, link_keys).kind == "auto_reply"
