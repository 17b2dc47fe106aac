"""What ``newsletter doctor`` finds, and the sender set-up every check looks at."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from newsletter.config import Config
from newsletter.deliverability.dns_lookup import Dns

SENDGRID_SPF = "sendgrid.net"
# What each HTTP provider's SPF include is (the first is suggested), and its name.
PROVIDER_SPF: dict[str, tuple[str, ...]] = {
    "sendgrid": (SENDGRID_SPF,),
    "postmark": ("spf.mtasv.net",),
    "ses": ("amazonses.com",),
    "mailgun": ("mailgun.org", "eu.mailgun.org"),
}
PROVIDER_NAMES = {
    "sendgrid": "SendGrid",
    "postmark": "Postmark",
    "ses": "Amazon SES",
    "mailgun": "Mailgun",
}

# Providers whose return path is their own unless a domain of yours is set up there and
# named in the config (SendGrid's comes with its domain authentication, checked by its
# CNAMEs): the setting, and what is said while it is not set.
CUSTOM_RETURN_PATH = {
    "postmark": "postmark.return_path_domain",
    "ses": "ses.mail_from_domain",
}
OWN_RETURN_PATH = {
    "postmark": "Postmark's return path is its own (pm.mtasv.net) unless a custom "
    "Return-Path domain is set up there and named in postmark.return_path_domain",
    "ses": "Amazon SES's return path is its own (amazonses.com) unless a custom MAIL FROM "
    "domain is set up there and named in ses.mail_from_domain",
}


@dataclass(frozen=True)
class Finding:
    check: str  # spf, mail-from, dkim, dmarc, alignment, mx, https, one-click
    level: str  # ok, warning, error
    subject: str  # the name looked at: a domain, a record name, a URL
    message: str
    record: str | None = None  # the zone-file line to publish, when one fixes it


@dataclass(frozen=True)
class Diagnosis:
    from_domain: str
    # None: the provider's own (SendGrid; Postmark and SES without their custom domain)
    return_path_domain: str | None
    site_url: str
    provider: str
    nameserver: str  # HOST[:PORT] asked, or "system" (the system's nameservers)
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


def _lower(domain: str | None) -> str | None:
    return domain.lower().rstrip(".") if domain else None


@dataclass(frozen=True)
class SenderSetup:
    """The config, the provider the check is for, and the DNS to ask."""

    config: Config
    provider: str
    dns: Dns

    @property
    def from_domain(self) -> str:
        return domain_of(self.config.sender.email)

    @property
    def return_path_domain(self) -> str | None:
        """Where bounces go, whose SPF receivers check: through SMTP ``bounces.address``'s
        domain, else the From domain; through Mailgun its sending domain; through Postmark
        and SES the custom domain set up there (``postmark.return_path_domain``,
        ``ses.mail_from_domain``); None where the provider bounces to a return path of its
        own (SendGrid, Postmark and SES without theirs): none of those reads
        bounces.address."""
        if self.provider == "postmark":
            return _lower(self.config.postmark.return_path_domain)
        if self.provider == "ses":
            return _lower(self.config.ses.mail_from_domain)
        if self.provider == "sendgrid":
            return None
        if self.provider == "mailgun":
            return (self.config.mailgun.domain or self.from_domain).lower()
        return domain_of(self.config.bounces.address or self.config.sender.email)

    @property
    def dkim_domain(self) -> str | None:
        """The d= of our signatures: smtp.dkim's domain; SendGrid signs as the From
        domain once the domain is authenticated there, Postmark and SES once their DKIM
        is set up (known here by postmark.dkim_selector, ses.dkim_tokens), Mailgun as
        its sending domain."""
        if self.provider == "smtp" and self.config.smtp.dkim is not None:
            return self.config.smtp.dkim.domain or self.from_domain
        if self.provider == "sendgrid":
            return self.from_domain
        if self.provider == "postmark" and self.config.postmark.dkim_selector:
            return self.from_domain
        if self.provider == "ses" and self.config.ses.dkim_tokens:
            return self.from_domain
        if self.provider == "mailgun":
            return self.config.mailgun.domain or self.from_domain
        return None

    @property
    def dkim_setting(self) -> str:
        """The setting that makes (or declares) this provider's DKIM signature."""
        return {
            "postmark": "postmark.dkim_selector, once Postmark's DKIM record is published",
            "ses": "ses.dkim_tokens, once SES's Easy DKIM CNAMEs are published",
            "mailgun": "mailgun.domain on the From domain",
        }.get(self.provider, "smtp.dkim")
