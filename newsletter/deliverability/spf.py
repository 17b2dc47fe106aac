"""SPF (RFC 7208): the record of a domain, read and evaluated as a receiver would.

:func:`evaluate` answers "may this address send mail for this domain?" the way
``check_host()`` does, counting the DNS-querying terms (``include``, ``a``, ``mx``,
``ptr``, ``exists``, ``redirect``) against the limit of 10, past which receivers give
``permerror`` and the record counts as none. :func:`lookup_count` counts them over the
whole record tree, every branch, because a receiver's evaluation may take any branch.
Macros (``%{i}`` and friends) and ``ptr`` are rare in a newsletter sender's record and
are not expanded: such a term counts its look-up and matches nothing here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from newsletter.deliverability.dns_lookup import Dns

LOOKUP_LIMIT = 10
MX_LIMIT = 10
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
QUERYING = frozenset({"include", "a", "mx", "ptr", "exists"})
_TERM = re.compile(r"(?P<qualifier>[+?~-]?)(?P<name>[a-z0-9]+)(?P<sep>[:/=]?)(?P<arg>.*)", re.I)


class SpfError(Exception):
    """The record is broken (``permerror``) or DNS failed (``temperror``)."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Term:
    qualifier: str  # "+", "-", "~", "?"
    name: str  # mechanism or modifier name, lowercase
    argument: str  # what follows ":" / "=" / "/" (the separator kept for cidr-only "a/24")

    @property
    def is_modifier(self) -> bool:
        return self.name not in MECHANISMS

    def __str__(self) -> str:
        qualifier = "" if self.qualifier == "+" else self.qualifier
        return f"{qualifier}{self.name}{self.argument}"


@dataclass(frozen=True)
class SpfRecord:
    text: str
    terms: tuple[Term, ...]

    @property
    def mechanisms(self) -> list[Term]:
        return [term for term in self.terms if not term.is_modifier]

    @property
    def redirect(self) -> str | None:
        for term in self.terms:
            if term.name == "redirect":
                return term.argument[1:]
        return None

    @property
    def all_term(self) -> Term | None:
        for term in self.terms:
            if term.name == "all":
                return term
        return None

    def with_mechanism(self, mechanism: str) -> str:
        """The record's text with ``mechanism`` added before its ``all`` (or at the end)."""
        terms = [str(term) for term in self.terms]
        position = next(
            (index for index, term in enumerate(self.terms) if term.name in ("all", "redirect")),
            len(terms),
        )
        return " ".join(["v=spf1", *terms[:position], mechanism, *terms[position:]])


def is_spf(text: str) -> bool:
    return text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")


def parse(text: str) -> SpfRecord:
    """A ``v=spf1`` record's terms; :class:`SpfError` (permerror) on a syntax error."""
    terms = []
    for word in text.split()[1:]:
        match = _TERM.fullmatch(word)
        if match is None:
            raise SpfError("permerror", f"'{word}' is not an SPF term")
        name = match["name"].lower()
        qualifier = match["qualifier"] or "+"
        separator, argument = match["sep"], match["arg"]
        if name in MECHANISMS:
            if separator == "=":
                raise SpfError("permerror", f"'{word}': mechanisms take ':' not '='")
            if name in ("include", "exists", "ip4", "ip6") and (separator != ":" or not argument):
                raise SpfError("permerror", f"'{word}': {name} needs a value after ':'")
            if name == "all" and (separator or argument):
                raise SpfError("permerror", f"'{word}': all takes no value")
        elif separator != "=":
            raise SpfError("permerror", f"'{word}' is not a known SPF mechanism")
        elif match["qualifier"]:
            raise SpfError("permerror", f"'{word}': a modifier takes no qualifier")
        terms.append(Term(qualifier, name, f"{separator}{argument}"))
    record = SpfRecord(text, tuple(terms))
    if sum(term.name == "redirect" for term in terms) > 1:
        raise SpfError("permerror", "more than one redirect=")
    return record


def find_records(dns: Dns, domain: str) -> list[str]:
    """The ``v=spf1`` TXT records of ``domain`` (more than one is a permerror)."""
    return [text for text in dns.txt(domain) if is_spf(text)]


def record_of(dns: Dns, domain: str) -> SpfRecord | None:
    records = find_records(dns, domain)
    if not records:
        return None
    if len(records) > 1:
        raise SpfError("permerror", f"{domain} has {len(records)} SPF records; keep one")
    return parse(records[0])


class _Counter:
    def __init__(self) -> None:
        self.lookups = 0

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise SpfError(
                "permerror", f"more than {LOOKUP_LIMIT} DNS look-ups (include, a, mx, ...)"
            )


def evaluate(dns: Dns, domain: str, address: str) -> str:
    """The SPF result for mail from ``address`` with a return path at ``domain``:
    pass, fail, softfail, neutral, none, permerror or temperror."""
    try:
        return _check_host(dns, domain, ipaddress.ip_address(address), _Counter(), depth=0)
    except SpfError as error:
        return error.result


def _check_host(
    dns: Dns,
    domain: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    counter: _Counter,
    *,
    depth: int,
) -> str:
    if depth > LOOKUP_LIMIT:
        raise SpfError("permerror", "include or redirect loop")
    record = record_of(dns, domain)
    if record is None:
        return "none"
    for term in record.mechanisms:
        if term.name in QUERYING:
            counter.count()
        if _matches(dns, domain, term, address, counter, depth):
            return QUALIFIERS[term.qualifier]
    if record.redirect is not None:
        counter.count()
        result = _check_host(dns, record.redirect, address, counter, depth=depth + 1)
        return "permerror" if result == "none" else result
    return "neutral"


def _matches(
    dns: Dns,
    domain: str,
    term: Term,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    counter: _Counter,
    depth: int,
) -> bool:
    name, argument = term.name, term.argument
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(argument[1:], strict=False)
        except ValueError:
            raise SpfError("permerror", f"'{term}' is not an address or network") from None
        return address.version == network.version and address in network
    if name == "include":
        result = _check_host(dns, argument[1:], address, counter, depth=depth + 1)
        if result in ("none", "permerror"):
            raise SpfError("permerror", f"include:{argument[1:]} has no usable SPF record")
        if result == "temperror":
            raise SpfError("temperror", f"include:{argument[1:]} could not be looked up")
        return result == "pass"
    if "%" in argument or name in ("ptr", "exists"):
        return False  # macros and ptr are not expanded (see the module doc)
    target, cidr4, cidr6 = _domain_and_cidrs(argument, domain)
    if name == "a":
        return _in_any(address, dns.addresses(target), cidr4, cidr6)
    exchangers = dns.mx(target)[:MX_LIMIT]
    return any(
        _in_any(address, dns.addresses(exchanger.host), cidr4, cidr6)
        for exchanger in exchangers
        if exchanger.host
    )


def _domain_and_cidrs(argument: str, domain: str) -> tuple[str, int | None, int | None]:
    """``:example.org/24//64`` -> ("example.org", 24, 64); no domain: the current one."""
    spec = argument[1:] if argument.startswith(":") else argument
    target, _, cidrs = spec.partition("/")
    cidr4_text, _, cidr6_text = (
        cidrs.partition("//") if not cidrs.startswith("/") else ("", "", cidrs[1:])
    )
    try:
        cidr4 = int(cidr4_text) if cidr4_text else None
        cidr6 = int(cidr6_text) if cidr6_text else None
    except ValueError:
        raise SpfError("permerror", f"'{argument}': a prefix length must be a number") from None
    return target or domain, cidr4, cidr6


def _in_any(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    candidates: list[str],
    cidr4: int | None,
    cidr6: int | None,
) -> bool:
    for candidate in candidates:
        other = ipaddress.ip_address(candidate)
        if other.version != address.version:
            continue
        prefix = (cidr4 if other.version == 4 else cidr6) or other.max_prefixlen
        if address in ipaddress.ip_network(f"{other}/{prefix}", strict=False):
            return True
    return False


@dataclass(frozen=True)
class Tree:
    """What the whole record tree holds: its look-ups and the domains it includes."""

    lookups: int
    includes: frozenset[str]


def walk(dns: Dns, domain: str) -> Tree:
    """Count every DNS-querying term over every include and redirect of ``domain``.

    :class:`SpfError` when a branch is broken (an include without a record, a loop).
    """
    includes: set[str] = set()

    def count(name: str, seen: tuple[str, ...]) -> int:
        if name in seen or len(seen) > LOOKUP_LIMIT:
            raise SpfError("permerror", f"include or redirect loop through {name}")
        record = record_of(dns, name)
        if record is None:
            if seen:
                raise SpfError("permerror", f"{name}, included by {seen[-1]}, has no SPF record")
            return 0
        total = 0
        for term in record.terms:
            if term.name in QUERYING or term.name == "redirect":
                total += 1
            if term.name in ("include", "redirect") and "%" not in term.argument:
                target = term.argument[1:].lower()
                includes.add(target)
                total += count(target, (*seen, name))
        return total

    lookups = count(domain.lower(), ())
    return Tree(lookups, frozenset(includes))
