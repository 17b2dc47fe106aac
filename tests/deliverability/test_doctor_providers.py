"""``newsletter doctor`` for Postmark, Amazon SES and Mailgun: each one's SPF include and
its DKIM records, against a real DNS server on 127.0.0.1."""

from __future__ import annotations

import pytest

from newsletter.deliverability.dkim_keys import SigningKey, generate_key
from tests.deliverability.conftest import DOMAIN, RELAY
from tests.deliverability.test_doctor import Configure, check, found
from tests.fakes.dns import FakeDns
from tests.fakes.tls import TestCA

pytestmark = pytest.mark.slow  # a DNS server and the web app over TLS for each test

TOKENS = ["abcdefghijklmnopqrstuvwxyz234567", "bcdefghijklmnopqrstuvwxyz2345678",
          "cdefghijklmnopqrstuvwxyz23456789"]  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "settings", "include", "checked_at"),
    [
        ("postmark", {}, "spf.mtasv.net", "Postmark's return path is its own (pm.mtasv.net)"),
        ("ses", {}, "amazonses.com", "Amazon SES's return path is its own (amazonses.com)"),
        ("sendgrid", {}, "sendgrid.net", "SendGrid's return path is its own (sendgrid.net)"),
        (
            "mailgun",
            {"mailgun": {"domain": f"mg.{DOMAIN}"}},
            "mailgun.org",
            f"Mailgun's return path is mg.{DOMAIN}",
        ),
    ],
)
def test_the_from_domain_needs_no_include_where_the_provider_does_not_return_to_it(
    configure: Configure,
    dns: FakeDns,
    test_ca: TestCA,
    provider: str,
    settings: dict[str, object],
    include: str,
    checked_at: str,
) -> None:
    """These providers send with an envelope sender (Return-Path) of their own or of a
    subdomain, never the From domain: receivers check SPF there, so the From domain's
    record needs no include of theirs (the old check asked for one, a lookup wasted)."""
    config = configure(provider=provider, **settings)

    [note] = [f for f in found(check(config, dns, test_ca), "spf") if f.subject == DOMAIN]

    assert note.level == "ok"
    assert note.record is None
    assert note.message.startswith(
        f"{DOMAIN}: v=spf1 a:{RELAY} include:_spf.{DOMAIN} -all is valid (2 of 10 look-ups) "
        f"and needs no include:{include}: {checked_at}"
    )
    assert "SPF is checked there, not here" in note.message
    if provider == "mailgun":  # its sending domain is under the From domain: aligned
        assert note.message.endswith(f"DMARC's SPF alignment comes from mg.{DOMAIN}")
    elif provider == "sendgrid":
        assert note.message.endswith(
            "DMARC's SPF alignment comes with that authentication, else rests on DKIM alone"
        )
    else:
        assert note.message.endswith("DMARC alignment rests on DKIM alone")

    dns.set(DOMAIN, "TXT")  # no SPF record at all: nothing this mail needs
    [bare] = [f for f in found(check(config, dns, test_ca), "spf") if f.subject == DOMAIN]
    assert bare.level == "ok"
    assert bare.message.startswith(f"{DOMAIN}: no SPF record, which this mail does not need: ")


def test_mailgun_sending_as_the_from_domain_needs_its_include(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    """With mailgun.domain the From domain itself, Mailgun's envelope sender is
    bounce+...@ that domain: its SPF is the one receivers check."""
    config = configure(provider="mailgun", mailgun={"domain": DOMAIN})

    [error] = found(check(config, dns, test_ca), "spf", "error")

    assert "does not include mailgun.org" in error.message
    assert "Mailgun's servers are not authorised" in error.message
    assert error.record == (
        f'{DOMAIN}. IN TXT "v=spf1 a:{RELAY} include:_spf.{DOMAIN} include:mailgun.org -all"'
    )

    dns.set("mailgun.org", "TXT", "v=spf1 ip4:198.51.100.0/24 ~all")  # Mailgun's own
    dns.set(DOMAIN, "TXT", "v=spf1 include:mailgun.org ~all")
    [ok] = found(check(config, dns, test_ca), "spf")
    assert (ok.level, ok.message) == ("ok", f"{DOMAIN}: v=spf1 include:mailgun.org ~all "
                                      "authorises Mailgun (1 of 10 look-ups)")  # fmt: skip


def test_mailgun_eu_include_is_accepted(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(provider="mailgun", mailgun={"domain": DOMAIN, "region": "eu"})
    dns.set("eu.mailgun.org", "TXT", "v=spf1 ip4:198.51.100.0/24 ~all")
    dns.set(DOMAIN, "TXT", "v=spf1 include:eu.mailgun.org ~all")

    [ok] = found(check(config, dns, test_ca), "spf")

    assert ok.level == "ok"


def test_postmark_dkim_is_checked_at_its_configured_selector(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    unset = check(configure(provider="postmark"), dns, test_ca)
    [warning] = found(unset, "dkim")
    assert warning.level == "warning"
    assert "postmark.dkim_selector is not set" in warning.message

    selector = "20240101123456pm"
    config = configure(provider="postmark", postmark={"dkim_selector": selector})
    [missing] = found(check(config, dns, test_ca), "dkim")
    assert (missing.level, missing.subject) == ("error", f"{selector}._domainkey.{DOMAIN}")

    key = SigningKey(DOMAIN, selector, generate_key(2048), "postmark's")
    dns.set(key.record_name, "TXT", key.txt_record)
    checked = check(config, dns, test_ca)
    [ok] = found(checked, "dkim")
    assert ok.level == "ok"
    assert ok.message == f"{selector}._domainkey.{DOMAIN} publishes a 2048-bit RSA key"
    # Postmark signs as the From domain: DMARC alignment counts it.
    [aligned] = found(checked, "alignment")
    # Postmark bounces to its own return path, not to bounces.address: not claimed.
    assert (aligned.level, aligned.message) == (
        "ok",
        f"From {DOMAIN}: DKIM d={DOMAIN} is aligned; Postmark's return path is its own "
        "(pm.mtasv.net) unless a custom Return-Path domain is set up there and named in "
        "postmark.return_path_domain",
    )
    # Without the selector, the warning says what to set for Postmark, not smtp.dkim.
    [unaligned] = found(unset, "alignment")
    assert unaligned.level == "warning"
    assert unaligned.message.endswith(
        "(set postmark.dkim_selector, once Postmark's DKIM record is published)"
    )


def test_ses_easy_dkim_needs_its_three_cnames(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    [warning] = found(check(configure(provider="ses"), dns, test_ca), "dkim")
    assert warning.level == "warning"
    assert "ses.dkim_tokens is not set" in warning.message

    config = configure(provider="ses", ses={"dkim_tokens": TOKENS})
    dns.set(f"{TOKENS[0]}._domainkey.{DOMAIN}", "CNAME", f"{TOKENS[0]}.dkim.amazonses.com")
    dns.set(f"{TOKENS[1]}._domainkey.{DOMAIN}", "CNAME", "elsewhere.example.net")

    findings = found(check(config, dns, test_ca), "dkim")

    assert [(f.subject, f.level) for f in findings] == [
        (f"{TOKENS[0]}._domainkey.{DOMAIN}", "ok"),
        (f"{TOKENS[1]}._domainkey.{DOMAIN}", "error"),
        (f"{TOKENS[2]}._domainkey.{DOMAIN}", "error"),
    ]
    assert "points to elsewhere.example.net" in findings[1].message
    assert findings[2].record == (
        f"{TOKENS[2]}._domainkey.{DOMAIN}. IN CNAME {TOKENS[2]}.dkim.amazonses.com."
    )


def test_mailgun_dkim_selectors_point_to_mailgun_or_publish_a_key(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    sending = f"mg.{DOMAIN}"
    config = configure(provider="mailgun", mailgun={"domain": sending})
    dns.set(f"pdk1._domainkey.{sending}", "CNAME", "pdk1._domainkey.9d876.dkim1.mailgun.com")

    findings = found(check(config, dns, test_ca), "dkim")

    assert [(f.subject, f.level) for f in findings] == [
        (f"pdk1._domainkey.{sending}", "ok"),
        (f"pdk2._domainkey.{sending}", "error"),
    ]
    assert "set mailgun.dkim_selectors" in findings[1].message

    manual = configure(provider="mailgun", mailgun={"domain": sending, "dkim_selectors": ["k1"]})
    key = SigningKey(sending, "k1", generate_key(2048), "mailgun's")
    dns.set(key.record_name, "TXT", key.txt_record)
    [ok] = found(check(manual, dns, test_ca), "dkim")
    assert (ok.subject, ok.level) == (f"k1._domainkey.{sending}", "ok")


def test_mailgun_returns_to_its_sending_domain_not_to_bounces_address(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    """Mailgun's return path is bounce+...@ its sending domain, whatever bounces.address
    says: that domain's SPF is checked, and it is what DMARC aligns."""
    sending = f"mg.{DOMAIN}"
    config = configure(
        provider="mailgun",
        mailgun={"domain": sending},
        bounces={"address": "bounces@mailer.example.net"},
    )

    diagnosis = check(config, dns, test_ca)

    assert diagnosis.return_path_domain == sending
    assert [f.subject for f in found(diagnosis, "spf")] == [DOMAIN, sending]
    [alignment] = found(diagnosis, "alignment")
    assert alignment.message.startswith(
        f"From {DOMAIN}: DKIM d={sending} is not aligned (its key is not in place: see the "
        f"dkim error); the return path {sending} is aligned"
    )


def test_ses_is_never_said_to_return_to_bounces_address(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(provider="ses", bounces={"address": "bounces@mailer.example.net"})

    diagnosis = check(config, dns, test_ca)

    assert diagnosis.return_path_domain is None
    assert [f.subject for f in found(diagnosis, "spf")] == [DOMAIN]
    [alignment] = found(diagnosis, "alignment")
    assert alignment.level == "warning"
    assert alignment.message == (
        f"From {DOMAIN}: no DKIM signature of ours; Amazon SES's return path is its own "
        "(amazonses.com) unless a custom MAIL FROM domain is set up there and named in "
        "ses.mail_from_domain: DMARC passes only through that custom domain, if it is set up "
        "(set ses.dkim_tokens, "
        "once SES's Easy DKIM CNAMEs are published)"
    )
