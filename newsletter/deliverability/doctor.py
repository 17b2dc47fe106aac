"""``newsletter doctor``: is the sender's domain ready to send?

For the From domain, the return-path domain (``bounces.address``) and ``site_url``:
SPF, DKIM, DMARC and its alignment, MX for the bounce domain when a mailbox is read,
and HTTPS with a working one-click endpoint. Each :class:`Finding` is ``ok``,
``warning`` or ``error``, says what is wrong, and where a record would fix it, the
exact record to publish. Nothing here changes anything, and the only traffic is DNS
questions to the chosen nameserver and one HTTPS request to ``site_url``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.config import Config
from newsletter.deliverability import dkim_keys, dmarc, spf
from newsletter.deliverability.dns_lookup import Dns, DnsUnavailable
from newsletter.deliverability.https_check import check_site
from newsletter.errors import NewsletterError

LEVELS = ("ok", "warning", "error")
SENDGRID_SPF = "sendgrid.net"


@dataclass(frozen=True)
class Finding:
    check: str  # spf, dkim, dmarc, alignment, mx, https, one-click
    level: str  # ok, warning, error
    subject: str  # the name looked at: a domain, a record name, a URL
    message: str
    record: str | None = None  # the zone-file line to publish, when one fixes it


@dataclass(frozen=True)
class Diagnosis:
    from_domain: str
    return_path_domain: str | None  # None: the provider's own (SendGrid)
    site_url: str
    provider: str
    nameserver: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(finding.level == "error" for finding in self.findings)

    @property
    def warnings(self) -> int:
        return sum(finding.level == "warning" for finding in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors, "warnings": self.warnings}


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def return_path_domain(config: Config, provider: str) -> str | None:
    """Where bounces go, whose SPF receivers check: ``bounces.address``'s domain, else
    the From domain; None for SendGrid, which sends from a return path of its own."""
    if provider == "sendgrid":
        return None
    return domain_of(config.bounces.address or config.sender.email)


def diagnose(
    config: Config,
    *,
    provider: str | None = None,
    nameserver: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 5.0,
) -> Diagnosis:
    provider = provider or config.provider
    dns = Dns(nameserver, timeout=timeout)
    from_domain = domain_of(config.sender.email)
    bounce_domain = return_path_domain(config, provider)
    diagnosis = Diagnosis(from_domain, bounce_domain, config.site_url, provider, dns.where)
    doctor = _Doctor(config, provider, dns)
    checks: list[tuple[str, str, Callable[[], Iterator[Finding]]]] = [
        ("spf", from_domain, lambda: doctor.check_spf(from_domain)),
    ]
    if bounce_domain is not None and bounce_domain != from_domain:
        checks.append(("spf", bounce_domain, lambda: doctor.check_spf(bounce_domain)))
    checks += [
        ("dkim", from_domain, doctor.check_dkim),
        ("dmarc", from_domain, doctor.check_dmarc),
    ]
    if config.mailbox.url:
        mx_domain = domain_of(config.bounces.address or config.sender.email)
        checks.append(("mx", mx_domain, lambda: doctor.check_mx(mx_domain)))
    checks.append(("https", config.site_url, lambda: doctor.check_https(ca_file, timeout)))
    for check, subject, run in checks:
        try:
            diagnosis.findings.extend(run())
        except DnsUnavailable as error:
            diagnosis.findings.append(
                Finding(check, "error", subject, f"could not check: {error}; try again later")
            )
    return diagnosis


class _Doctor:
    def __init__(self, config: Config, provider: str, dns: Dns) -> None:
        self.config = config
        self.provider = provider
        self.dns = dns
        self.from_domain = domain_of(config.sender.email)

    # -- SPF ---------------------------------------------------------------------

    def check_spf(self, domain: str) -> Iterator[Finding]:
        try:
            record = spf.record_of(self.dns, domain)
        except spf.SpfError as error:
            records = spf.find_records(self.dns, domain)
            if len(records) > 1:
                message = (
                    f"{len(records)} SPF records ({' | '.join(records)}): receivers then "
                    "ignore all of them (permerror); merge them into one"
                )
            else:
                message = f"the SPF record {records[0]!r} is invalid: {error}"
            yield Finding(
                "spf", "error", domain, message, self._spf_line(domain, self._suggested_spf())
            )
            return
        if record is None:
            yield Finding(
                "spf",
                "error",
                domain,
                "no SPF record: receivers cannot tell who may send as this domain",
                self._spf_line(domain, self._suggested_spf()),
            )
            return
        try:
            tree = spf.walk(self.dns, domain)
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
        yield from self._spf_ending(domain, record)
        yield from self._spf_authorises(domain, record, tree)

    def _spf_ending(self, domain: str, record: spf.SpfRecord) -> Iterator[Finding]:
        ending = record.all_term
        if ending is None and record.redirect is None:
            yield Finding(
                "spf",
                "warning",
                domain,
                f"{record.text} has no 'all' at the end: mail from anyone else is "
                "'neutral'; end it with ~all (or -all)",
                self._spf_line(domain, f"{record.text} ~all"),
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
                self._spf_line(domain, fixed),
            )

    def _spf_authorises(
        self, domain: str, record: spf.SpfRecord, tree: spf.Tree
    ) -> Iterator[Finding]:
        counted = f"{tree.lookups} of {spf.LOOKUP_LIMIT} look-ups"
        if self.provider == "sendgrid":
            if SENDGRID_SPF in tree.includes:
                yield Finding("spf", "ok", domain, f"{record.text} authorises SendGrid ({counted})")
            else:
                yield Finding(
                    "spf",
                    "error",
                    domain,
                    f"{record.text} does not include {SENDGRID_SPF}: SendGrid's servers are "
                    "not authorised to send as this domain",
                    self._spf_line(domain, record.with_mechanism(f"include:{SENDGRID_SPF}")),
                )
            return
        if self.provider != "smtp":
            yield Finding(
                "spf",
                "ok",
                domain,
                f"{record.text} is valid ({counted}); with provider {self.provider!r} "
                "nothing is sent, so no sender is checked",
            )
            return
        relay = self.config.smtp.host
        addresses = _relay_addresses(self.dns, relay)
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
            if (result := spf.evaluate(self.dns, domain, address)) != "pass"
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
            self._spf_line(domain, record.with_mechanism(mechanism)),
        )

    def _suggested_spf(self) -> str:
        if self.provider == "sendgrid":
            mechanism = f"include:{SENDGRID_SPF}"
        elif self.provider == "smtp":
            relay = self.config.smtp.host
            mechanism = _mechanism_for(relay, _relay_addresses(self.dns, relay))
        else:
            mechanism = "mx"
        return f"v=spf1 {mechanism} ~all"

    @staticmethod
    def _spf_line(domain: str, text: str) -> str:
        return dkim_keys.zone_txt_line(domain, text)

    # -- DKIM --------------------------------------------------------------------

    def dkim_domain(self) -> str | None:
        """The d= of our signatures: smtp.dkim's domain; SendGrid signs as the From domain
        once the domain is authenticated there."""
        if self.provider == "smtp" and self.config.smtp.dkim is not None:
            return self.config.smtp.dkim.domain or self.from_domain
        if self.provider == "sendgrid":
            return self.from_domain
        return None

    def check_dkim(self) -> Iterator[Finding]:
        if self.provider == "sendgrid":
            for selector in self.config.sendgrid.dkim_selectors:
                yield from self._sendgrid_selector(selector)
        elif self.provider == "smtp":
            yield from self._smtp_key()

    def _sendgrid_selector(self, selector: str) -> Iterator[Finding]:
        name = f"{selector}._domainkey.{self.from_domain}"
        target = self.dns.cname(name)
        example = (
            f"{name}. IN CNAME {selector}.domainkey.u1234567.wl123.sendgrid.net. "
            "(the exact target is on SendGrid's Settings > Sender Authentication page)"
        )
        texts = [text for text in self.dns.txt(name) if "p=" in text]
        if target is None and not texts:
            yield Finding(
                "dkim",
                "error",
                name,
                f"no DKIM key at {name}: SendGrid signs as {self.from_domain} only once its "
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
        yield from self._published_key(name, texts, example, None)

    def _smtp_key(self) -> Iterator[Finding]:
        if self.config.smtp.dkim is None:
            yield Finding(
                "dkim",
                "warning",
                self.from_domain,
                "smtp.dkim is not set, so newsletter does not sign: unless the relay "
                f"signs as {self.from_domain}, Gmail and Yahoo see no DKIM; run "
                "'newsletter dkim keygen --selector s1' and follow what it prints",
            )
            return
        try:
            key = dkim_keys.load_signing_key(self.config)
        except NewsletterError as error:
            yield Finding("dkim", "error", "smtp.dkim", str(error))
            return
        assert key is not None
        texts = [text for text in self.dns.txt(key.record_name) if "p=" in text]
        yield from self._published_key(key.record_name, texts, key.zone_line, key)

    def _published_key(
        self,
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
        yield Finding(
            "dkim", "ok", name, f"{name} publishes a {published.bits}-bit RSA key{matches}"
        )

    # -- DMARC and alignment -----------------------------------------------------

    def check_dmarc(self) -> Iterator[Finding]:
        domain = self.from_domain
        suggested = dkim_keys.zone_txt_line(
            f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
        )
        record, count = dmarc.find_record(self.dns, domain)
        if record is None:
            yield Finding(
                "dmarc",
                "error",
                f"_dmarc.{domain}",
                "no DMARC record: Gmail and Yahoo require one of bulk senders (p=none is "
                "enough to start)",
                suggested,
            )
            return
        if count > 1:
            yield Finding(
                "dmarc",
                "error",
                record.name,
                f"{count} DMARC records at {record.name}: receivers ignore them all; keep one",
            )
            return
        if record.policy not in dmarc.POLICIES:
            yield Finding(
                "dmarc",
                "error",
                record.name,
                f"{record.text}: p= must be none, quarantine or reject",
                suggested,
            )
            return
        shown = f"{record.name}: {record.text}"
        if record.policy == "none":
            yield Finding(
                "dmarc",
                "warning",
                record.name,
                f"{shown}: p=none only asks for reports; once they show your mail passing "
                "(a few weeks), move to p=quarantine, then p=reject, so that nobody else "
                "can send as you",
            )
        else:
            yield Finding("dmarc", "ok", record.name, f"{shown}: policy {record.policy}")
        if not record.reports_to:
            yield Finding(
                "dmarc",
                "warning",
                record.name,
                f"{record.text} has no rua=: nobody receives the aggregate reports that show "
                "who sends as you; add rua=mailto:an address you read",
                dkim_keys.zone_txt_line(
                    record.name, f"{record.text.rstrip('; ')}; rua=mailto:dmarc-reports@{domain}"
                ),
            )
        yield self._alignment(record)

    def _alignment(self, record: dmarc.DmarcRecord) -> Finding:
        domain = self.from_domain
        dkim_domain = self.dkim_domain()
        return_path = return_path_domain(self.config, self.provider)
        dkim_aligned = dkim_domain is not None and dmarc.aligned(
            domain, dkim_domain, strict=record.strict("dkim")
        )
        spf_aligned = return_path is not None and dmarc.aligned(
            domain, return_path, strict=record.strict("spf")
        )
        if self.provider == "sendgrid":
            spf_aligned = True  # SendGrid's return path is a subdomain of yours (em1234.)
        parts = [
            f"DKIM d={dkim_domain} {'is' if dkim_aligned else 'is not'} aligned"
            if dkim_domain
            else "no DKIM signature of ours",
            f"the return path {return_path} {'is' if spf_aligned else 'is not'} aligned"
            if return_path
            else "SendGrid's return path (a subdomain of yours once authenticated) is aligned",
        ]
        said = f"From {domain}: " + "; ".join(parts)
        if dkim_aligned and spf_aligned:
            return Finding("alignment", "ok", domain, said)
        if dkim_aligned or spf_aligned:
            return Finding(
                "alignment",
                "warning",
                domain,
                f"{said}: DMARC passes through one of them only; align both (set "
                + ("bounces.address on the From domain)" if not spf_aligned else "smtp.dkim)"),
            )
        return Finding(
            "alignment",
            "error",
            domain,
            f"{said}: DMARC fails, and Gmail and Yahoo reject or junk the mail; sign with "
            "smtp.dkim for the From domain and put bounces.address on it",
        )

    # -- MX and HTTPS ------------------------------------------------------------

    def check_mx(self, domain: str) -> Iterator[Finding]:
        mailbox_host = urlsplit(self.config.mailbox.url or "").hostname or "mail.example.org"
        record = f"{domain}. IN MX 10 {mailbox_host}. (or your mail provider's MX host)"
        exchangers = self.dns.mx(domain)
        if not exchangers:
            yield Finding(
                "mx",
                "error",
                domain,
                f"{domain} has no MX record: bounces and complaints sent there may never "
                "reach the mailbox that 'newsletter mailbox' reads",
                record,
            )
            return
        if any(not exchanger.host for exchanger in exchangers):
            yield Finding(
                "mx",
                "error",
                domain,
                f"{domain} has a null MX ('0 .'): it accepts no mail, so bounces are lost",
                record,
            )
            return
        unresolved = [ex.host for ex in exchangers if not self.dns.addresses(ex.host)]
        hosts = ", ".join(f"{ex.preference} {ex.host}" for ex in exchangers)
        if unresolved:
            yield Finding(
                "mx",
                "error" if len(unresolved) == len(exchangers) else "warning",
                domain,
                f"MX {hosts}: {', '.join(unresolved)} has no address",
            )
            return
        yield Finding("mx", "ok", domain, f"bounces reach MX {hosts}")

    def check_https(self, ca_file: Path | None, timeout: float) -> Iterator[Finding]:
        for result in check_site(self.config, self.dns, ca_file=ca_file, timeout=timeout):
            yield Finding(result.check, result.level, self.config.site_url, result.message)


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
