"""DMARC (RFC 7489): the policy a domain publishes, and identifier alignment.

A message passes DMARC when SPF passes for its return-path domain, or DKIM passes for
its ``d=`` domain, *and* that domain is aligned with the From domain: in relaxed mode
(the default, ``aspf``/``adkim`` = ``r``) both have the same organisational domain
(the registered name under a public suffix, from the Public Suffix List); in strict
mode they are equal. Gmail and Yahoo require it of bulk senders.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from newsletter.deliverability.dns_lookup import Dns

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcRecord:
    name: str  # where it was found: _dmarc.<domain> or the organisational domain's
    text: str
    tags: dict[str, str]

    @property
    def policy(self) -> str:
        return self.tags.get("p", "").lower()

    @property
    def reports_to(self) -> list[str]:
        return [uri.strip() for uri in self.tags.get("rua", "").split(",") if uri.strip()]

    def strict(self, mechanism: str) -> bool:
        """True when ``aspf`` (``spf``) or ``adkim`` (``dkim``) asks for exact domains."""
        return self.tags.get(f"a{mechanism}", "r").lower() == "s"


def parse(text: str) -> dict[str, str]:
    tags = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags[name.strip().lower()] = value.strip()
    return tags


def is_dmarc(text: str) -> bool:
    return text.replace(" ", "").upper().startswith("V=DMARC1")


def find_record(dns: Dns, domain: str) -> tuple[DmarcRecord | None, int]:
    """The policy that covers ``domain``: its own ``_dmarc`` record, else the
    organisational domain's (RFC 7489 6.6.3); and how many records the name had."""
    for name in dict.fromkeys([domain, organisational_domain(domain)]):
        records = [text for text in dns.txt(f"_dmarc.{name}") if is_dmarc(text)]
        if records:
            return DmarcRecord(f"_dmarc.{name}", records[0], parse(records[0])), len(records)
    return None, 0


@functools.cache
def _suffixes() -> object:
    from publicsuffixlist import PublicSuffixList  # its list loads in ~0.2 s: only here

    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """``news.example.co.uk`` -> ``example.co.uk`` (the name registered under a suffix)."""
    domain = domain.lower().rstrip(".")
    private = getattr(_suffixes(), "privatesuffix")(domain)  # noqa: B009
    return str(private) if private else domain


def aligned(from_domain: str, other: str, *, strict: bool) -> bool:
    from_domain, other = from_domain.lower(), other.lower()
    if strict:
        return from_domain == other
    return organisational_domain(from_domain) == organisational_domain(other)
