"""The doctor's findings about a custom return-path domain set up at Postmark or SES:
the records that make the provider bounce to a domain of yours, so that SPF counts for
DMARC alignment. Without them the provider quietly keeps its own return path.

- Postmark (``postmark.return_path_domain``): a subdomain of the From domain, a CNAME to
  ``pm.mtasv.net``; its SPF is then Postmark's own, through the CNAME.
- Amazon SES (``ses.mail_from_domain``): a subdomain of the From domain with an MX to
  ``feedback-smtp.<region>.amazonses.com`` (priority 10), which SES looks for before each
  send, and an SPF record with ``include:amazonses.com`` (the SPF check reads that).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from newsletter.deliverability.findings import CUSTOM_RETURN_PATH, Finding, SenderSetup

POSTMARK_TARGET = "pm.mtasv.net"
_SES_FEEDBACK = re.compile(r"^feedback-smtp\.([a-z0-9-]+)\.amazonses\.com$")


def return_path_findings(setup: SenderSetup, domain: str) -> Iterator[Finding]:
    """Findings about ``domain``, the Postmark or SES custom return path (check
    ``mail-from``); an error wherever the provider would not use it."""
    setting = CUSTOM_RETURN_PATH[setup.provider]
    from_domain = setup.from_domain
    if not domain.endswith(f".{from_domain}"):
        yield Finding(
            "mail-from",
            "error",
            domain,
            f"{setting} {domain} is not a subdomain of the From domain {from_domain}, "
            "which the provider requires; set one up like "
            f"{'pm-bounces' if setup.provider == 'postmark' else 'mail'}.{from_domain}",
        )
        return
    if setup.provider == "postmark":
        yield _postmark_cname(setup, domain)
    else:
        yield _ses_mx(setup, domain)


def _postmark_cname(setup: SenderSetup, domain: str) -> Finding:
    target = (setup.dns.cname(domain) or "").lower().rstrip(".")
    if target == POSTMARK_TARGET:
        return Finding(
            "mail-from",
            "ok",
            domain,
            f"{domain}: CNAME {POSTMARK_TARGET}: Postmark's bounces return through your domain",
        )
    found = f"its CNAME points to {target}" if target else "it has no CNAME"
    return Finding(
        "mail-from",
        "error",
        domain,
        f"{domain}: {found}, not {POSTMARK_TARGET}: Postmark keeps its own return path "
        "(SPF not aligned) until the CNAME is published and verified on its Domains page",
        f"{domain}. IN CNAME {POSTMARK_TARGET}.",
    )


def _ses_mx(setup: SenderSetup, domain: str) -> Finding:
    region = setup.config.ses.region
    hosts = [exchanger.host.lower().rstrip(".") for exchanger in setup.dns.mx(domain)]
    for host in hosts:
        matched = _SES_FEEDBACK.match(host)
        if matched and (region is None or matched.group(1) == region):
            return Finding(
                "mail-from",
                "ok",
                domain,
                f"{domain}: MX {host}: SES's bounces and complaints return through your domain",
            )
    expected = f"feedback-smtp.{region or '<ses.region>'}.amazonses.com"
    found = f"its MX is {', '.join(hosts)}" if hosts else "it has no MX record"
    return Finding(
        "mail-from",
        "error",
        domain,
        f"{domain}: {found}, not {expected}: SES then sends from amazonses.com (SPF not "
        "aligned) or refuses the mail, as the identity's MX-failure setting says",
        f"{domain}. IN MX 10 {expected}.",
    )
