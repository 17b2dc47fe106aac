"""The doctor's DKIM findings: SendGrid's domain-authentication CNAMEs, Postmark's key at
its dated selector, SES's three Easy DKIM CNAMEs, Mailgun's selectors, or the key of
``smtp.dkim`` published, long enough, and the one we sign with."""

from __future__ import annotations

from collections.abc import Iterator

from newsletter.deliverability import dkim_keys
from newsletter.deliverability.findings import SENDGRID_SPF, Finding, SenderSetup
from newsletter.errors import NewsletterError

SES_DKIM = "dkim.amazonses.com"
MAILGUN_DKIM = (".mailgun.com", ".mailgun.org")


def dkim_findings(setup: SenderSetup) -> Iterator[Finding]:
    if setup.provider == "sendgrid":
        for selector in setup.config.sendgrid.dkim_selectors:
            yield from _sendgrid_selector(setup, selector)
    elif setup.provider == "smtp":
        yield from _smtp_key(setup)
    elif setup.provider == "postmark":
        yield from _postmark_key(setup)
    elif setup.provider == "ses":
        yield from _ses_tokens(setup)
    elif setup.provider == "mailgun":
        domain = setup.config.mailgun.domain or setup.from_domain
        for selector in setup.config.mailgun.dkim_selectors:
            yield from _mailgun_selector(setup, domain, selector)


def _postmark_key(setup: SenderSetup) -> Iterator[Finding]:
    selector = setup.config.postmark.dkim_selector
    if selector is None:
        yield Finding(
            "dkim",
            "warning",
            setup.from_domain,
            "postmark.dkim_selector is not set, so its key is not checked: Postmark's "
            "selector has a date in it (like 20240101123456pm); copy it from the Sender "
            "Signatures > DNS Settings page into newsletter.yaml",
        )
        return
    name = f"{selector}._domainkey.{setup.from_domain}"
    texts = [text for text in setup.dns.txt(name) if "p=" in text]
    example = f'{name}. IN TXT "k=rsa; p=..." (the value is on Postmark\'s DNS Settings page)'
    yield from _published_key(setup, name, texts, example, None)


def _ses_tokens(setup: SenderSetup) -> Iterator[Finding]:
    tokens = setup.config.ses.dkim_tokens
    if not tokens:
        yield Finding(
            "dkim",
            "warning",
            setup.from_domain,
            "ses.dkim_tokens is not set, so Easy DKIM is not checked: copy the three tokens "
            "of the identity's DKIM CNAMEs (SES console, or 'aws sesv2 get-email-identity "
            f"--email-identity {setup.from_domain}') into newsletter.yaml",
        )
        return
    for token in tokens:
        name = f"{token}._domainkey.{setup.from_domain}"
        expected = f"{token}.{SES_DKIM}"
        record = f"{name}. IN CNAME {expected}."
        target = setup.dns.cname(name)
        if target is None:
            yield Finding(
                "dkim",
                "error",
                name,
                f"no CNAME at {name}: SES signs as {setup.from_domain} only once all three "
                "Easy DKIM CNAMEs are published",
                record,
            )
        elif target != expected:
            yield Finding(
                "dkim", "error", name, f"{name} points to {target}, not {expected}", record
            )
        else:
            yield Finding("dkim", "ok", name, f"{name} points to SES's key ({expected})")


def _mailgun_selector(setup: SenderSetup, domain: str, selector: str) -> Iterator[Finding]:
    name = f"{selector}._domainkey.{domain}"
    target = setup.dns.cname(name)
    example = (
        f"{name}. IN CNAME {selector}._domainkey.<id>.dkim1.mailgun.com. (or the TXT key; "
        "both are on Mailgun's DNS records page)"
    )
    if target is not None and target.endswith(MAILGUN_DKIM):
        yield Finding("dkim", "ok", name, f"{name} points to Mailgun's key ({target})")
        return
    texts = [text for text in setup.dns.txt(name) if "p=" in text]
    if target is None and not texts:
        yield Finding(
            "dkim",
            "error",
            name,
            f"no DKIM key at {name}: publish the record on Mailgun's DNS records page, or "
            "set mailgun.dkim_selectors to the selector it shows",
            example,
        )
        return
    if target is not None:
        yield Finding(
            "dkim",
            "warning",
            name,
            f"{name} points to {target}, not to Mailgun: is it another service's key?",
            example,
        )
    yield from _published_key(setup, name, texts, example, None)


def _sendgrid_selector(setup: SenderSetup, selector: str) -> Iterator[Finding]:
    name = f"{selector}._domainkey.{setup.from_domain}"
    target = setup.dns.cname(name)
    example = (
        f"{name}. IN CNAME {selector}.domainkey.u1234567.wl123.sendgrid.net. "
        "(the exact target is on SendGrid's Settings > Sender Authentication page)"
    )
    texts = [text for text in setup.dns.txt(name) if "p=" in text]
    if target is None and not texts:
        yield Finding(
            "dkim",
            "error",
            name,
            f"no DKIM key at {name}: SendGrid signs as {setup.from_domain} only once its "
            "domain authentication CNAMEs are published",
            example,
        )
        return
    if target is not None and not target.endswith(f".{SENDGRID_SPF}"):
        yield Finding(
            "dkim",
            "warning",
            name,
            f"{name} points to {target}, not to SendGrid: is it another service's key?",
            example,
        )
    yield from _published_key(setup, name, texts, example, None)


def _smtp_key(setup: SenderSetup) -> Iterator[Finding]:
    if setup.config.smtp.dkim is None:
        yield Finding(
            "dkim",
            "warning",
            setup.from_domain,
            "smtp.dkim is not set, so newsletter does not sign: unless the relay "
            f"signs as {setup.from_domain}, Gmail and Yahoo see no DKIM; run "
            "'newsletter dkim keygen --selector s1' and follow what it prints",
        )
        return
    try:
        key = dkim_keys.load_signing_key(setup.config)
    except NewsletterError as error:
        yield Finding("dkim", "error", "smtp.dkim", str(error))
        return
    assert key is not None
    texts = [text for text in setup.dns.txt(key.record_name) if "p=" in text]
    yield from _published_key(setup, key.record_name, texts, key.zone_line, key)


def _published_key(
    setup: SenderSetup,
    name: str,
    texts: list[str],
    record: str,
    ours: dkim_keys.SigningKey | None,
) -> Iterator[Finding]:
    if not texts:
        yield Finding(
            "dkim",
            "error",
            name,
            f"no DKIM key published at {name}: receivers cannot verify our signatures",
            record,
        )
        return
    if len(texts) > 1:
        yield Finding(
            "dkim", "error", name, f"{len(texts)} key records at {name}; keep one", record
        )
        return
    published = dkim_keys.parse_key_record(texts[0])
    if published.key is None:
        yield Finding("dkim", "error", name, f"the key at {name} is unusable: "
                      f"{published.problem}", record)  # fmt: skip
        return
    if published.bits < dkim_keys.MINIMUM_BITS:
        yield Finding(
            "dkim",
            "error",
            name,
            f"the key at {name} has {published.bits} bits; receivers ignore keys under "
            f"{dkim_keys.MINIMUM_BITS}: make a {dkim_keys.RECOMMENDED_BITS}-bit one",
            record if ours is not None and ours.bits >= dkim_keys.MINIMUM_BITS else None,
        )
        return
    if ours is not None and (
        published.key.public_numbers() != ours.private_key.public_key().public_numbers()
    ):
        yield Finding(
            "dkim",
            "error",
            name,
            f"the key at {name} does not match the private key we sign with "
            f"({ours.source}): every signature would fail; publish ours",
            record,
        )
        return
    if published.bits < dkim_keys.RECOMMENDED_BITS:
        yield Finding(
            "dkim",
            "warning",
            name,
            f"the key at {name} has {published.bits} bits; {dkim_keys.RECOMMENDED_BITS} "
            "is the norm now: plan a new key with a new selector",
        )
        return
    matches = " and matches the key we sign with" if ours is not None else ""
    yield Finding("dkim", "ok", name, f"{name} publishes a {published.bits}-bit RSA key{matches}")
