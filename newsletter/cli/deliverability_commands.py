"""``newsletter doctor`` and ``newsletter dkim``: the sender's DNS, and DKIM keys."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter.cli import State, cli, pass_state
from newsletter.send.providers import PROVIDERS

LEVEL_LABELS = {"ok": "ok     ", "warning": "warning", "error": "error  "}


@cli.command()
@click.option(
    "--nameserver",
    metavar="HOST[:PORT]",
    help="Ask this nameserver instead of the system's (e.g. 127.0.0.1:5353, [::1]:53).",
)
@click.option(
    "--provider",
    type=click.Choice(sorted(PROVIDERS)),
    help="Check for this provider. Default: 'provider' in newsletter.yaml.",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also trust this CA (PEM) for site_url's certificate: a private CA. "
    "Verification always stays on.",
)
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for each DNS answer and for site_url.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_state
def doctor(
    state: State,
    nameserver: str | None,
    provider: str | None,
    ca_file: Path | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Check that the sender's domain is ready to send; exit 1 on any error.

    For the From domain, the return-path domain (bounces.address) and site_url: SPF
    (valid, within 10 look-ups, ends in ~all/-all; the return path's authorises the
    provider, and a From domain the provider does not return to needs no include), DKIM
    (SendGrid's CNAMEs, or the smtp.dkim key: published, long enough, the one we sign
    with), DMARC (policy, reports, alignment of From with DKIM and the return path),
    the records of Postmark's custom Return-Path or SES's custom MAIL FROM domain when
    one is set, MX for the bounce domain when mailbox.url is set, and HTTPS on site_url
    with a one-click unsubscribe endpoint that answers a POST. Each finding says what is
    wrong and the record to publish.

    \b
    Examples:
      newsletter doctor
      newsletter doctor --provider sendgrid --json
    """
    from newsletter.deliverability.doctor import diagnose

    diagnosis = diagnose(
        state.config, provider=provider, nameserver=nameserver, ca_file=ca_file, timeout=timeout
    )
    if as_json:
        click.echo(json.dumps(diagnosis.as_dict(), indent=2))
    else:
        return_path = diagnosis.return_path_domain or "the provider's own"
        asked = (
            "the system's nameservers"
            if diagnosis.nameserver == "system"
            else f"the nameserver {diagnosis.nameserver}"
        )
        click.echo(
            f"Sender {diagnosis.from_domain}, return path {return_path}, site "
            f"{diagnosis.site_url}; provider {diagnosis.provider}; asking {asked}"
        )
        click.echo()
        for finding in diagnosis.findings:
            label = click.style(LEVEL_LABELS[finding.level], fg=_COLOURS[finding.level])
            click.echo(f"{label}  {finding.check:<10} {finding.message}")
            if finding.record and finding.level != "ok":
                click.echo(f"{'':19}publish: {finding.record}")
        click.echo()
        click.echo(
            f"{diagnosis.errors} error(s), {diagnosis.warnings} warning(s)."
            + ("" if diagnosis.errors else " Ready to send.")
        )
    if diagnosis.errors:
        raise click.exceptions.Exit(1)


_COLOURS = {"ok": "green", "warning": "yellow", "error": "red"}


@cli.group()
def dkim() -> None:
    """DKIM signing keys for sending through SMTP (smtp.dkim)."""


def _dns_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from newsletter.config import dns_name

    try:
        return None if value is None else dns_name(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@dkim.command()
@click.option(
    "--selector", required=True, callback=_dns_name, help="The selector, e.g. s1 (or 2026a)."
)
@click.option(
    "--domain",
    callback=_dns_name,
    help="The signing domain. Default: smtp.dkim.domain, else the From address's.",
)
@click.option(
    "--bits",
    type=click.Choice(["1024", "2048", "3072", "4096"]),
    default="2048",
    show_default=True,
    help="Key length; 2048 is the norm (some DNS hosts cannot hold longer TXT records).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key. Default: smtp.dkim.private_key_file when "
    "smtp.dkim has this selector, else dkim/<selector>.pem in the project.",
)
@pass_state
def keygen(state: State, selector: str, domain: str | None, bits: str, out: Path | None) -> None:
    """Make a DKIM key: write the private key (mode 0600), print the TXT record.

    The private key stays in the project (keep it out of version control: the starter
    .gitignore lists dkim/); publish the printed record, then set smtp.dkim as shown.
    An existing file is never replaced.

    \b
    Examples:
      newsletter dkim keygen --selector s1
      newsletter dkim keygen --selector 2026a --out /etc/newsletter/dkim.pem
    """
    from newsletter.deliverability.dkim_keys import SigningKey, generate_key, write_private_key

    config = state.config
    configured = config.smtp.dkim.domain if config.smtp.dkim else None
    domain = domain or configured or config.sender.email.rpartition("@")[2].lower()
    settings = config.smtp.dkim
    if out is not None:
        path = out
    elif settings is not None and settings.selector == selector and settings.private_key_file:
        # The file the configuration reads (and a missing key's error asks for).
        path = config.root / settings.private_key_file
    else:
        path = config.root / "dkim" / f"{selector}.pem"
    key = generate_key(int(bits))
    write_private_key(path, key)
    signing = SigningKey(domain, selector, key, str(path))
    shown = _relative(path, config.root)
    click.echo(f"Wrote the private key to {shown} (mode 0600; keep it secret).")
    click.echo()
    click.echo("1. Publish this TXT record in the DNS of " + domain + ":")
    click.echo()
    click.echo(f"   {signing.zone_line}")
    click.echo()
    click.echo("2. Sign with it: in newsletter.yaml,")
    click.echo()
    click.echo("   smtp:")
    click.echo("     dkim:")
    click.echo(f"       selector: {selector}")
    click.echo(f"       domain: {domain}")
    click.echo(f"       private_key_file: {shown}")
    click.echo()
    click.echo("3. Once the record is out, 'newsletter doctor' checks it matches this key.")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())
