"""The doctor's DKIM findings: SendGrid's domain-authentication CNAMEs, or the key of
``smtp.dkim`` published, long enough, and the one we sign with."""

from __future__ import annotations

from collections.abc import Iterator

from newsletter.deliverability import dkim_keys
from newsletter.deliverability.findings import SENDGRID_SPF, Finding, SenderSetup
from newsletter.errors import NewsletterError


def dkim_findings(setup: SenderSetup) -> Iterator[Finding]:
    if setup.provider == "sendgrid":
        for selector in setup.config.sendgrid.dkim_selectors:
            yield from _sendgrid_selector(setup, selector)
    elif setup.provider == "smtp":
        yield from _smtp_key(setup)


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
