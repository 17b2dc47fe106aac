"""``newsletter doctor`` for a custom return path set up at Postmark
(``postmark.return_path_domain``: a CNAME to pm.mtasv.net) or Amazon SES
(``ses.mail_from_domain``: an MX to feedback-smtp.<region>.amazonses.com and an SPF
record with include:amazonses.com): its records are checked, and once they are in
place it counts for DMARC's SPF alignment; against a real DNS server on 127.0.0.1."""

from __future__ import annotations

import pytest

from newsletter.deliverability.dkim_keys import SigningKey, generate_key
from tests.deliverability.conftest import DOMAIN
from tests.deliverability.test_doctor import Configure, check, found
from tests.fakes.dns import FakeDns
from tests.fakes.tls import TestCA

pytestmark = pytest.mark.slow  # a DNS server and the web app over TLS for each test

SELECTOR = "20240101123456pm"


def test_postmarks_return_path_counts_for_alignment_once_its_cname_is_published(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    bounces = f"pm-bounces.{DOMAIN}"
    config = configure(
        provider="postmark",
        postmark={"dkim_selector": SELECTOR, "return_path_domain": bounces},
    )
    key = SigningKey(DOMAIN, SELECTOR, generate_key(2048), "postmark's")
    dns.set(key.record_name, "TXT", key.txt_record)

    missing = check(config, dns, test_ca)

    assert missing.return_path_domain == bounces
    [error] = found(missing, "mail-from")
    assert (error.level, error.subject, error.record) == (
        "error",
        bounces,
        f"{bounces}. IN CNAME pm.mtasv.net.",
    )
    assert error.message.startswith(f"{bounces}: it has no CNAME, not pm.mtasv.net: Postmark")
    # Its SPF is Postmark's, through the CNAME: not looked for at the name itself.
    assert [f.subject for f in found(missing, "spf")] == [DOMAIN]
    [warning] = found(missing, "alignment")
    assert (warning.level, warning.message) == (
        "warning",
        f"From {DOMAIN}: DKIM d={DOMAIN} is aligned; the return path {bounces} is not in use "
        "(its records are not in place: see the mail-from error): DMARC passes through one "
        "of them only; align both (set postmark.return_path_domain under the From domain, "
        "its records published)",
    )

    dns.set(bounces, "CNAME", "pm.mtasv.net")
    ready = check(config, dns, test_ca)

    [ok] = found(ready, "mail-from")
    assert (ok.level, ok.message) == (
        "ok",
        f"{bounces}: CNAME pm.mtasv.net: Postmark's bounces return through your domain",
    )
    [aligned] = found(ready, "alignment")
    assert (aligned.level, aligned.message) == (
        "ok",
        f"From {DOMAIN}: DKIM d={DOMAIN} is aligned; the return path {bounces} is aligned",
    )


def test_a_cname_elsewhere_is_named(configure: Configure, dns: FakeDns, test_ca: TestCA) -> None:
    bounces = f"pm-bounces.{DOMAIN}"
    config = configure(provider="postmark", postmark={"return_path_domain": bounces})
    dns.set(bounces, "CNAME", "bounces.sendgrid.net")

    [error] = found(check(config, dns, test_ca), "mail-from")

    assert error.message.startswith(
        f"{bounces}: its CNAME points to bounces.sendgrid.net, not pm.mtasv.net"
    )


def test_ses_mail_from_needs_its_mx_in_the_region_and_its_spf(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    mail_from = f"mail.{DOMAIN}"
    config = configure(provider="ses", ses={"region": "eu-west-1", "mail_from_domain": mail_from})
    dns.set("amazonses.com", "TXT", "v=spf1 ip4:199.255.192.0/22 ~all")  # SES's own
    dns.set(mail_from, "MX", "10 feedback-smtp.us-east-1.amazonses.com")  # another region

    missing = check(config, dns, test_ca)

    [error] = found(missing, "mail-from")
    assert (error.level, error.record) == (
        "error",
        f"{mail_from}. IN MX 10 feedback-smtp.eu-west-1.amazonses.com.",
    )
    assert error.message.startswith(
        f"{mail_from}: its MX is feedback-smtp.us-east-1.amazonses.com, not "
        "feedback-smtp.eu-west-1.amazonses.com: SES then sends from amazonses.com"
    )
    [no_spf] = [f for f in found(missing, "spf", "error") if f.subject == mail_from]
    assert (no_spf.subject, no_spf.record) == (
        mail_from,
        f'{mail_from}. IN TXT "v=spf1 include:amazonses.com ~all"',
    )
    [unaligned] = found(missing, "alignment")
    assert unaligned.level == "error"  # no DKIM of ours, and the return path not in use

    dns.set(mail_from, "MX", "10 feedback-smtp.eu-west-1.amazonses.com")
    dns.set(mail_from, "TXT", "v=spf1 include:amazonses.com ~all")
    ready = check(config, dns, test_ca)

    [ok] = found(ready, "mail-from")
    assert ok.message == (
        f"{mail_from}: MX feedback-smtp.eu-west-1.amazonses.com: SES's bounces and "
        "complaints return through your domain"
    )
    assert [f.level for f in found(ready, "spf") if f.subject == mail_from] == ["ok"]
    [aligned] = found(ready, "alignment")
    assert (aligned.level, aligned.message) == (
        "warning",
        f"From {DOMAIN}: no DKIM signature of ours; the return path {mail_from} is aligned: "
        "DMARC passes through one of them only; align both (set ses.dkim_tokens, once SES's "
        "Easy DKIM CNAMEs are published)",
    )


def test_a_return_path_outside_the_from_domain_is_refused(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(provider="ses", ses={"mail_from_domain": "mail.example.net"})

    [error] = found(check(config, dns, test_ca), "mail-from")

    assert error.message == (
        f"ses.mail_from_domain mail.example.net is not a subdomain of the From domain "
        f"{DOMAIN}, which the provider requires; set one up like mail.{DOMAIN}"
    )
