"""DNS look-ups for the doctor, through dnspython, at one nameserver or the system's.

A name that does not exist, or has no record of the type, is an empty answer: that
is a finding, not a failure. A nameserver that does not answer (timeout, SERVFAIL,
refused) is a :class:`DnsUnavailable`: the doctor cannot tell then, and says so.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.rdatatype
import dns.resolver

from newsletter.errors import NewsletterError


class DnsUnavailable(NewsletterError):
    """The nameserver did not answer a question (timeout, SERVFAIL, refused)."""


@dataclass(frozen=True)
class MailExchanger:
    preference: int
    host: str  # without the final dot; "" for a null MX ("0 .": no mail accepted)


def parse_nameserver(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (IPv6: ``[::1]:5353``) -> (address, port); port 53 by default."""
    host, port = text, "53"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            host = ""
        port = rest[1:] if rest else "53"
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        address = ""
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise NewsletterError(
            f"--nameserver {text!r}: give an address and optional port, like 127.0.0.1:5353"
        )
    return address, int(port)


class Dns:
    """Questions to one resolver; answers cached for the doctor's one run."""

    def __init__(self, nameserver: str | None = None, *, timeout: float = 5.0) -> None:
        if nameserver is None:
            self.resolver = dns.resolver.Resolver()
            self.where = "the system's nameservers"
        else:
            address, port = parse_nameserver(nameserver)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [address]
            self.resolver.port = port
            self.where = f"the nameserver {nameserver}"
        self.resolver.lifetime = timeout
        self._answers: dict[tuple[str, str], list[str]] = {}
        self.queries = 0

    def txt(self, name: str) -> list[str]:
        """Each TXT record's text, its strings joined (RFC 7208 3.3)."""
        return self._ask(name, "TXT")

    def addresses(self, name: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``name`` (CNAMEs followed)."""
        return self._ask(name, "A") + self._ask(name, "AAAA")

    def cname(self, name: str) -> str | None:
        targets = self._ask(name, "CNAME")
        return targets[0] if targets else None

    def mx(self, name: str) -> list[MailExchanger]:
        exchangers = []
        for text in self._ask(name, "MX"):
            preference, _, host = text.partition(" ")
            exchangers.append(MailExchanger(int(preference), host.rstrip(".").lower()))
        return sorted(exchangers, key=lambda exchanger: exchanger.preference)

    def _ask(self, name: str, kind: str) -> list[str]:
        key = (name.lower().rstrip("."), kind)
        if key in self._answers:
            return self._answers[key]
        self.queries += 1
        try:
            answer = self.resolver.resolve(key[0] + ".", kind, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            records: list[str] = []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise DnsUnavailable(
                f"{self.where} gave no answer for {kind} {key[0]} ({_reason(error)})"
            ) from None
        else:
            records = [_text(record, kind) for record in answer]
        self._answers[key] = records
        return records


def _text(record: object, kind: str) -> str:
    if kind == "TXT":
        strings = getattr(record, "strings", ())
        return b"".join(strings).decode("utf-8", "replace")
    if kind == "MX":
        exchange = getattr(record, "exchange")  # noqa: B009  (typed loosely by dnspython)
        return f"{getattr(record, 'preference')} {str(exchange).lower()}"  # noqa: B009
    if kind == "CNAME":
        return str(getattr(record, "target")).rstrip(".").lower()  # noqa: B009
    return str(record)


def _reason(error: Exception) -> str:
    if isinstance(error, dns.exception.Timeout):
        return "timed out"
    return "the nameserver refused or failed"
