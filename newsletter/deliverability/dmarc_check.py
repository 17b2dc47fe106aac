"""The doctor's DMARC findings: the record, its policy and reports, and the alignment of
From with the DKIM ``d=`` and the return path."""

from __future__ import annotations

from collections.abc import Iterator

from newsletter.deliverability import dmarc
from newsletter.deliverability.dkim_keys import zone_txt_line
from newsletter.deliverability.findings import (
    CUSTOM_RETURN_PATH,
    OWN_RETURN_PATH,
    Finding,
    SenderSetup,
)


def dmarc_findings(
    setup: SenderSetup, *, dkim_ready: bool = True, return_path_ready: bool = True
) -> Iterator[Finding]:
    """``dkim_ready``: the DKIM check found our key in place (for SendGrid, the domain
    authenticated), so receivers can verify the signature that alignment counts on.
    ``return_path_ready``: the return path's records are in place (Postmark's CNAME, SES's
    MX and SPF), so the provider uses it."""
    domain = setup.from_domain
    suggested = zone_txt_line(
        f"_dmarc.{domain}", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
    )
    record, count = dmarc.find_record(setup.dns, domain)
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
            zone_txt_line(
                record.name, f"{record.text.rstrip('; ')}; rua=mailto:dmarc-reports@{domain}"
            ),
        )
    yield _alignment(setup, record, dkim_ready, return_path_ready)


def _alignment(
    setup: SenderSetup, record: dmarc.DmarcRecord, dkim_ready: bool, return_path_ready: bool
) -> Finding:
    domain = setup.from_domain
    dkim_domain = setup.dkim_domain
    return_path = setup.return_path_domain
    dkim_aligned = (
        dkim_ready
        and dkim_domain is not None
        and dmarc.aligned(domain, dkim_domain, strict=record.strict("dkim"))
    )
    custom = CUSTOM_RETURN_PATH.get(setup.provider)  # Postmark's, SES's: only once set up
    spf_aligned = (
        return_path is not None
        and (return_path_ready or custom is None)
        and dmarc.aligned(domain, return_path, strict=record.strict("spf"))
    )
    sendgrid = setup.provider == "sendgrid"
    if sendgrid:
        # Once the domain is authenticated, SendGrid's return path is a subdomain of
        # yours (em1234.); before, it is SendGrid's own, as is its signature's d=.
        spf_aligned = dkim_ready
    if dkim_domain is None:
        signed = "no DKIM signature of ours"
    elif not dkim_ready:
        signed = (
            f"DKIM d={dkim_domain} is not aligned (its key is not in place: see the dkim error)"
        )
    else:
        signed = f"DKIM d={dkim_domain} {'is' if dkim_aligned else 'is not'} aligned"
    if setup.provider in OWN_RETURN_PATH and return_path is None:
        said = f"From {domain}: {signed}; {OWN_RETURN_PATH[setup.provider]}"
        if dkim_aligned:
            return Finding("alignment", "ok", domain, said)
        return Finding(
            "alignment",
            "warning",
            domain,
            f"{said}: DMARC passes only through that custom domain, if it is set up ("
            + (
                f"set {setup.dkim_setting})"
                if dkim_ready
                else "publish the key the dkim check names)"
            ),
        )
    # Where bounces.address would not move the return path, the setting that does.
    moves_return_path = (
        "mailgun.domain under the From domain"
        if setup.provider == "mailgun"
        else f"{custom} under the From domain, its records published"
        if custom
        else "bounces.address on the From domain"
    )
    if return_path and custom and not return_path_ready:
        returned = (
            f"the return path {return_path} is not in use (its records are not in place: "
            "see the mail-from error)"
        )
    elif return_path:
        returned = f"the return path {return_path} {'is' if spf_aligned else 'is not'} aligned"
    elif spf_aligned:
        returned = "SendGrid's return path (a subdomain of yours once authenticated) is aligned"
    else:
        returned = "SendGrid's return path is its own until the domain is authenticated"
    parts = [signed, returned]
    said = f"From {domain}: " + "; ".join(parts)
    if dkim_aligned and spf_aligned:
        return Finding("alignment", "ok", domain, said)
    if dkim_aligned or spf_aligned:
        return Finding(
            "alignment",
            "warning",
            domain,
            f"{said}: DMARC passes through one of them only; align both ("
            + (
                f"set {moves_return_path})"
                if not spf_aligned
                else f"set {setup.dkim_setting})"
                if dkim_ready
                else "publish the key the dkim check names)"
            ),
        )
    return Finding(
        "alignment",
        "error",
        domain,
        f"{said}: DMARC fails, and Gmail and Yahoo reject or junk the mail; "
        + (
            "authenticate the domain at SendGrid (Settings > Sender Authentication) and "
            "publish the CNAMEs the dkim check names"
            if sendgrid
            else f"sign with {setup.dkim_setting} for the From domain and set {moves_return_path}"
        ),
    )
