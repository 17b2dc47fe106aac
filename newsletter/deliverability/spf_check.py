"""The doctor's SPF findings for one domain: the record, its look-ups, its ending, and
whether it authorises the provider (SendGrid's, Postmark's, SES's or Mailgun's include,
or the SMTP relay's addresses).

Receivers check SPF against the envelope sender's domain (the Return-Path), never the
From domain. Only the return-path domain must authorise the provider; a From domain the
provider does not return to (SendGrid's, Postmark's and SES's own return paths, their
custom ones, Mailgun's sending subdomain, an SMTP bounces.address elsewhere) is checked
for a sound record only, with a note of where SPF is checked instead."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator

from newsletter.deliverability import dmarc, spf
from newsletter.deliverability.dkim_keys import zone_txt_line
from newsletter.deliverability.dns_lookup import Dns
from newsletter.deliverability.findings import (
    OWN_RETURN_PATH,
    PROVIDER_NAMES,
    PROVIDER_SPF,
    Finding,
    SenderSetup,
)


def spf_findings(setup: SenderSetup, domain: str) -> Iterator[Finding]:
    """The findings about ``domain``'s SPF record, each message starting with the domain
    (the From domain and the return-path domain are both checked)."""
    for finding in _findings(setup, domain):
        yield dataclasses.replace(finding, message=f"{domain}: {finding.message}")


def _findings(setup: SenderSetup, domain: str) -> Iterator[Finding]:
    try:
        record = spf.record_of(setup.dns, domain)
    except spf.SpfError as error:
        records = spf.find_records(setup.dns, domain)
        if len(records) > 1:
            message = (
                f"{len(records)} SPF records ({' | '.join(records)}): receivers then "
                "ignore all of them (permerror); merge them into one"
            )
        else:
            message = f"the SPF record {records[0]!r} is invalid: {error}"
        yield Finding("spf", "error", domain, message, _spf_line(domain, _suggested_spf(setup)))
        return
    returns_here = domain == setup.return_path_domain
    if record is None and not returns_here:
        yield Finding(
            "spf",
            "ok",
            domain,
            f"no SPF record, which this mail does not need: {_where_spf_is_checked(setup)}",
        )
        return
    if record is None:
        yield Finding(
            "spf",
            "error",
            domain,
            "no SPF record: receivers cannot tell who may send as this domain",
            _spf_line(domain, _suggested_spf(setup)),
        )
        return
    try:
        tree = spf.walk(setup.dns, domain)
    except spf.SpfError as error:
        yield Finding("spf", "error", domain, f"{record.text}: {error}")
        return
    if tree.lookups > spf.LOOKUP_LIMIT:
        yield Finding(
            "spf",
            "error",
            domain,
            f"{record.text} takes {tree.lookups} DNS look-ups; receivers stop at "
            f"{spf.LOOKUP_LIMIT} and treat the record as broken (permerror): replace "
            "includes you do not send through, or list addresses with ip4:/ip6:",
        )
    yield from _spf_ending(setup, domain, record)
    if returns_here:
        yield from _spf_authorises(setup, domain, record, tree)
    else:
        yield Finding(
            "spf",
            "ok",
            domain,
            f"{record.text} is valid ({tree.lookups} of {spf.LOOKUP_LIMIT} look-ups) and "
            f"needs no {_what_it_would_name(setup)}: {_where_spf_is_checked(setup)}",
        )


def _what_it_would_name(setup: SenderSetup) -> str:
    includes = PROVIDER_SPF.get(setup.provider)
    if includes:
        return f"include:{includes[0]}"
    return "sender of this mail" if setup.provider != "smtp" else "relay"


def _where_spf_is_checked(setup: SenderSetup) -> str:
    """Which domain's SPF receivers check for this mail (the return path's), and what
    DMARC's alignment then rests on: said for a From domain that is not the return path."""
    return_path = setup.return_path_domain
    if setup.provider == "sendgrid":
        return (
            "SendGrid's return path is its own (sendgrid.net), or once the domain is "
            "authenticated there a subdomain of yours that SendGrid's records cover: SPF is "
            "checked there, not here; DMARC's SPF alignment comes with that authentication, "
            "else rests on DKIM alone"
        )
    if return_path is None:  # Postmark's, SES's own
        return (
            f"{OWN_RETURN_PATH[setup.provider]}: SPF is checked there, not here, and DMARC "
            "alignment rests on DKIM alone"
        )
    whose = f"{PROVIDER_NAMES[setup.provider]}'s" if setup.provider in PROVIDER_NAMES else "the"
    said = f"{whose} return path is {return_path}: SPF is checked there, not here"
    if dmarc.aligned(setup.from_domain, return_path, strict=False):
        return f"{said}; DMARC's SPF alignment comes from {return_path}"
    return f"{said}; it is not under the From domain, so DMARC alignment rests on DKIM alone"


def _spf_ending(setup: SenderSetup, domain: str, record: spf.SpfRecord) -> Iterator[Finding]:
    ending = record.all_term
    if ending is None and record.redirect is None:
        yield Finding(
            "spf",
            "warning",
            domain,
            f"{record.text} has no 'all' at the end: mail from anyone else is "
            "'neutral'; end it with ~all (or -all)",
            _spf_line(domain, f"{record.text} ~all"),
        )
    elif ending is not None and ending.qualifier in ("+", "?"):
        level = "error" if ending.qualifier == "+" else "warning"
        fixed = " ".join(
            ["v=spf1", *("~all" if term is ending else str(term) for term in record.terms)]
        )
        yield Finding(
            "spf",
            level,
            domain,
            f"{record.text} ends in {ending.qualifier}all: "
            + ("anyone may send as this domain" if level == "error" else "it says nothing")
            + "; end it with ~all (or -all)",
            _spf_line(domain, fixed),
        )


def _spf_authorises(
    setup: SenderSetup, domain: str, record: spf.SpfRecord, tree: spf.Tree
) -> Iterator[Finding]:
    counted = f"{tree.lookups} of {spf.LOOKUP_LIMIT} look-ups"
    includes = PROVIDER_SPF.get(setup.provider)
    if includes is not None:
        name = PROVIDER_NAMES[setup.provider]
        if any(include in tree.includes for include in includes):
            yield Finding("spf", "ok", domain, f"{record.text} authorises {name} ({counted})")
        else:
            yield Finding(
                "spf",
                "error",
                domain,
                f"{record.text} does not include {' or '.join(includes)}: {name}'s servers "
                "are not authorised to send as this domain",
                _spf_line(domain, record.with_mechanism(f"include:{includes[0]}")),
            )
        return
    if setup.provider != "smtp":
        yield Finding(
            "spf",
            "ok",
            domain,
            f"{record.text} is valid ({counted}); with provider {setup.provider!r} "
            "nothing is sent, so no sender is checked",
        )
        return
    relay = setup.config.smtp.host
    addresses = _relay_addresses(setup.dns, relay)
    public = [address for address in addresses if not _local(address)]
    if not public:
        yield Finding(
            "spf",
            "warning",
            domain,
            f"{record.text} is valid ({counted}); the relay smtp.host = {relay} is "
            f"{', '.join(addresses) or 'not resolvable'}, not a public address: check "
            "that the address it sends from is in the record",
        )
        return
    refused = {
        address: result
        for address in public
        if (result := spf.evaluate(setup.dns, domain, address)) != "pass"
    }
    if not refused:
        yield Finding(
            "spf",
            "ok",
            domain,
            f"{record.text} authorises the relay {relay} ({', '.join(public)}; {counted})",
        )
        return
    mechanism = _mechanism_for(relay, list(refused))
    yield Finding(
        "spf",
        "error",
        domain,
        f"{record.text} does not authorise the relay {relay}: "
        + ", ".join(f"{address} gets {result}" for address, result in refused.items()),
        _spf_line(domain, record.with_mechanism(mechanism)),
    )


def _suggested_spf(setup: SenderSetup) -> str:
    if setup.provider in PROVIDER_SPF:
        mechanism = f"include:{PROVIDER_SPF[setup.provider][0]}"
    elif setup.provider == "smtp":
        relay = setup.config.smtp.host
        mechanism = _mechanism_for(relay, _relay_addresses(setup.dns, relay))
    else:
        mechanism = "mx"
    return f"v=spf1 {mechanism} ~all"


def _spf_line(domain: str, text: str) -> str:
    return zone_txt_line(domain, text)


# Addresses a relay can have on a local network; receivers never see them.
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return True
    return any(ip.version == network.version and ip in network for network in _LOCAL_NETWORKS)


def _relay_addresses(dns: Dns, host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return dns.addresses(host)


def _mechanism_for(relay: str, addresses: list[str]) -> str:
    """``a:relay.example.org`` for a named relay (follows its address), else ip4:/ip6:."""
    try:
        ipaddress.ip_address(relay)
    except ValueError:
        return f"a:{relay}"
    address = ipaddress.ip_address(addresses[0] if addresses else relay)
    return f"ip{address.version}:{address}"
