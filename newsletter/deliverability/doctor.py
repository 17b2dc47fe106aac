"""``newsletter doctor``: is the sender's domain ready to send?

For the From domain, the return-path domain (``bounces.address``; Postmark's or SES's
custom one, :mod:`.return_path_check`) and ``site_url``:
SPF (:mod:`.spf_check`), DKIM (:mod:`.dkim_check`), DMARC and its alignment
(:mod:`.dmarc_check`), MX for the bounce domain when a mailbox is read, and HTTPS with
a working one-click endpoint (:mod:`.https_check`). Each :class:`Finding` is ``ok``,
``warning`` or ``error``, says what is wrong, and where a record would fix it, the
exact record to publish. Nothing here changes anything, and the only traffic is DNS
questions to the chosen nameserver and one HTTPS request to ``site_url``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.config import Config
from newsletter.deliverability.dkim_check import dkim_findings
from newsletter.deliverability.dmarc_check import dmarc_findings
from newsletter.deliverability.dns_lookup import Dns, DnsUnavailable
from newsletter.deliverability.findings import (
    CUSTOM_RETURN_PATH,
    Diagnosis,
    Finding,
    SenderSetup,
    domain_of,
)
from newsletter.deliverability.https_check import check_site
from newsletter.deliverability.return_path_check import return_path_findings
from newsletter.deliverability.spf_check import spf_findings


def diagnose(
    config: Config,
    *,
    provider: str | None = None,
    nameserver: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 5.0,
) -> Diagnosis:
    setup = SenderSetup(config, provider or config.provider, Dns(nameserver, timeout=timeout))
    from_domain, bounce_domain = setup.from_domain, setup.return_path_domain
    diagnosis = Diagnosis(
        from_domain, bounce_domain, config.site_url, setup.provider, nameserver or "system"
    )
    checks: list[tuple[str, str, Callable[[], Iterator[Finding]]]] = [
        ("spf", from_domain, lambda: spf_findings(setup, from_domain)),
    ]
    # Postmark's return path is a CNAME to its own domain, whose SPF is Postmark's.
    if bounce_domain not in (None, from_domain) and setup.provider != "postmark":
        checks.append(("spf", bounce_domain, lambda: spf_findings(setup, bounce_domain)))
    if bounce_domain is not None and setup.provider in CUSTOM_RETURN_PATH:
        checks.append(
            ("mail-from", bounce_domain, lambda: return_path_findings(setup, bounce_domain))
        )
    checks += [
        ("dkim", from_domain, lambda: dkim_findings(setup)),
        # Run after the DKIM and return-path checks: a signature or a return path counts
        # for alignment only when its records are in place (no error found above).
        (
            "dmarc",
            from_domain,
            lambda: dmarc_findings(
                setup, dkim_ready=dkim_ready(), return_path_ready=return_path_ready()
            ),
        ),
    ]
    if config.mailbox.url:
        mx_domain = domain_of(config.bounces.address or config.sender.email)
        checks.append(("mx", mx_domain, lambda: mx_findings(setup, mx_domain)))
    checks.append(("https", config.site_url, lambda: https_findings(setup, ca_file, timeout)))

    def dkim_ready() -> bool:
        return not any(f.check == "dkim" and f.level == "error" for f in diagnosis.findings)

    def return_path_ready() -> bool:
        return not any(
            f.level == "error" and (f.check == "mail-from" or f.subject == bounce_domain)
            for f in diagnosis.findings
        )

    for check, subject, run in checks:
        try:
            diagnosis.findings.extend(run())
        except DnsUnavailable as error:
            diagnosis.findings.append(
                Finding(check, "error", subject, f"could not check: {error}; try again later")
            )
    return diagnosis


def mx_findings(setup: SenderSetup, domain: str) -> Iterator[Finding]:
    mailbox_host = urlsplit(setup.config.mailbox.url or "").hostname or "mail.example.org"
    record = f"{domain}. IN MX 10 {mailbox_host}. (or your mail provider's MX host)"
    exchangers = setup.dns.mx(domain)
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
    unresolved = [ex.host for ex in exchangers if not setup.dns.addresses(ex.host)]
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


def https_findings(setup: SenderSetup, ca_file: Path | None, timeout: float) -> Iterator[Finding]:
    for result in check_site(setup.config, setup.dns, ca_file=ca_file, timeout=timeout):
        yield Finding(result.check, result.level, setup.config.site_url, result.message)
