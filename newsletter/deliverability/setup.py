"""Settings that cost deliverability, told before a send: no DNS, only the config.

``newsletter check`` and ``newsletter send`` show these as warnings (through
:func:`newsletter.render.checks.config_findings`); ``newsletter doctor`` goes further
and asks DNS.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from newsletter.config import Config


def setup_warnings(config: Config, provider: str | None = None) -> list[str]:
    """What is wrong with the sender's settings for ``provider`` (default: the config's)."""
    provider = provider or config.provider
    warnings = []
    sender_domain = config.sender.email.rpartition("@")[2].lower()
    bounces = config.bounces.address
    if provider == "smtp" and not bounces:
        warnings.append(
            "bounces.address is not set, so SMTP mail goes out with the From address as "
            "its return path: bounces land there without a token, and 'newsletter "
            f"mailbox' can never match them to a reader; set bounces.address (e.g. "
            f"bounces@{sender_domain}) to a mailbox that mailbox.url reads"
        )
    # Only SMTP sends from bounces.address (the outbox shows what SMTP would send); the
    # API providers bounce to a return path of their own.
    if bounces and provider in ("smtp", "outbox"):
        bounce_domain = bounces.rpartition("@")[2].lower()
        if not _same_organisation(sender_domain, bounce_domain):
            warnings.append(
                f"bounces.address is on {bounce_domain}, From on {sender_domain}: the "
                "return path's SPF does not align with From, so DMARC rests on DKIM "
                f"alone; put bounces.address on {sender_domain} (or a subdomain of it)"
            )
    if urlsplit(config.site_url).scheme != "https":
        warnings.append(
            f"site_url is {config.site_url}: one-click unsubscribe (RFC 8058) needs an "
            "https:// address, and Gmail and Yahoo want one-click from bulk senders; serve "
            "the web app over HTTPS and set site_url to it"
        )
    return warnings


def _same_organisation(first: str, second: str) -> bool:
    if first == second or first.endswith(f".{second}") or second.endswith(f".{first}"):
        return True
    # Only for two unrelated-looking names: the Public Suffix List takes ~0.2 s to load.
    from newsletter.deliverability.dmarc import aligned

    return aligned(first, second, strict=False)
