"""``newsletter doctor`` against a real DNS server on 127.0.0.1 serving good and
broken zones, and the real web app over HTTPS with a test CA."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.deliverability.dkim_keys import SigningKey, generate_key
from newsletter.deliverability.doctor import diagnose
from newsletter.deliverability.findings import Diagnosis, Finding
from tests.deliverability.conftest import DOMAIN, RELAY, RELAY_ADDRESS, SITE_HOST
from tests.fakes.dns import FakeDns
from tests.fakes.tls import HttpsServer, TestCA

Configure = Callable[..., Config]

pytestmark = pytest.mark.slow  # a DNS server and the web app over TLS for each test


def run_doctor(runner: CliRunner, dns: FakeDns, test_ca: TestCA, *options: str) -> tuple[int, str]:
    result = runner.invoke(
        cli, ["doctor", "--nameserver", dns.nameserver, "--ca-file", str(test_ca.pem), *options]
    )
    return result.exit_code, result.output


def check(config: Config, dns: FakeDns, test_ca: TestCA, **options: Any) -> Diagnosis:
    return diagnose(config, nameserver=dns.nameserver, ca_file=test_ca.pem, **options)


def found(diagnosis: Diagnosis, check: str, level: str | None = None) -> list[Finding]:
    return [
        finding
        for finding in diagnosis.findings
        if finding.check == check and (level is None or finding.level == level)
    ]


def test_a_domain_ready_to_send_has_no_errors_and_exits_0(
    runner: CliRunner, configure: Configure, dns: FakeDns, test_ca: TestCA, site: HttpsServer
) -> None:
    configure()

    code, output = run_doctor(runner, dns, test_ca)

    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == (
        f"Sender {DOMAIN}, return path {DOMAIN}, site https://{SITE_HOST}:{site.port}; "
        f"provider smtp; asking the nameserver {dns.nameserver}"
    )
    assert (
        f"ok       spf        {DOMAIN}: v=spf1 a:{RELAY} include:_spf.{DOMAIN} -all "
        f"authorises the relay {RELAY} ({RELAY_ADDRESS}; 2 of 10 look-ups)"
    ) in lines
    assert (
        f"ok       dkim       s1._domainkey.{DOMAIN} publishes a 2048-bit RSA key and matches "
        "the key we sign with" in lines
    )
    assert f"ok       dmarc      _dmarc.{DOMAIN}: v=DMARC1; p=quarantine; rua=mailto:dmarc@" \
        f"{DOMAIN}: policy quarantine" in lines  # fmt: skip
    assert (
        f"ok       alignment  From {DOMAIN}: DKIM d={DOMAIN} is aligned; the return path "
        f"{DOMAIN} is aligned" in lines
    )
    assert f"ok       mx         bounces reach MX 10 mx.{DOMAIN}" in lines
    assert any(
        line.startswith(f"ok       https      {SITE_HOST} has a valid certificate")
        for line in lines
    )
    assert "ok       one-click  POST /u/<probe> answered 200: one-click unsubscribe works" in lines
    assert lines[-1] == "0 error(s), 0 warning(s). Ready to send."
    # Every answer came from the local server: the site's name was resolved there too.
    assert (SITE_HOST, "A") in dns.questions


def test_json_lists_every_finding_and_exits_1_on_an_error(
    runner: CliRunner, configure: Configure, dns: FakeDns, test_ca: TestCA, signing_key: SigningKey
) -> None:
    configure()
    dns.set(signing_key.record_name, "TXT")  # the DKIM key was never published

    code, output = run_doctor(runner, dns, test_ca, "--json")

    assert code == 1
    report = json.loads(output)
    # The signature nobody can verify no longer aligns: DMARC rests on SPF alone.
    assert report["errors"] == 1 and report["warnings"] == 1
    [dkim] = [finding for finding in report["findings"] if finding["check"] == "dkim"]
    assert dkim["level"] == "error"
    assert dkim["subject"] == f"s1._domainkey.{DOMAIN}"
    assert dkim["record"] == signing_key.zone_line
    assert dkim["record"].startswith(f's1._domainkey.{DOMAIN}. IN TXT ( "v=DKIM1; k=rsa; p=MIIB')
    assert {finding["level"] for finding in report["findings"]} == {"ok", "warning", "error"}


def test_the_record_to_publish_is_printed_under_an_error(
    runner: CliRunner, configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    configure()
    dns.set(DOMAIN, "TXT", "google-site-verification=abc123")  # no SPF record left

    code, output = run_doctor(runner, dns, test_ca)

    assert code == 1
    assert (
        f"error    spf        {DOMAIN}: no SPF record: receivers cannot tell who may send "
        "as this domain\n"
        f'                   publish: {DOMAIN}. IN TXT "v=spf1 a:{RELAY} ~all"\n'
    ) in output
    assert output.splitlines()[-1] == "1 error(s), 0 warning(s)."


# -- SPF ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "level", "says", "publish"),
    [
        (
            "v=spf1 ip4:198.51.100.7 -all",
            "error",
            f"does not authorise the relay {RELAY}: {RELAY_ADDRESS} gets fail",
            f"v=spf1 ip4:198.51.100.7 a:{RELAY} -all",
        ),
        (
            f"v=spf1 a:{RELAY} +all",
            "error",
            "ends in +all: anyone may send as this domain",
            f"v=spf1 a:{RELAY} ~all",
        ),
        (
            f"v=spf1 a:{RELAY} ?all",
            "warning",
            "ends in ?all: it says nothing",
            f"v=spf1 a:{RELAY} ~all",
        ),
        (
            f"v=spf1 a:{RELAY}",
            "warning",
            "has no 'all' at the end",
            f"v=spf1 a:{RELAY} ~all",
        ),
        (
            f"v=spf1 a:{RELAY} bogus -all",
            "error",
            "is invalid: 'bogus' is not a known SPF mechanism",
            f"v=spf1 a:{RELAY} ~all",
        ),
    ],
)
def test_spf_records_that_do_not_do_their_job(
    configure: Configure,
    dns: FakeDns,
    test_ca: TestCA,
    record: str,
    level: str,
    says: str,
    publish: str,
) -> None:
    config = configure()
    dns.set(DOMAIN, "TXT", record)

    diagnosis = check(config, dns, test_ca)

    [finding] = [f for f in found(diagnosis, "spf") if f.level == level]
    assert says in finding.message
    assert finding.record == f'{DOMAIN}. IN TXT "{publish}"'


def test_more_than_ten_lookups_is_an_error(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure()
    includes = " ".join(f"include:spf{n}.{DOMAIN}" for n in range(10))
    dns.set(DOMAIN, "TXT", f"v=spf1 a:{RELAY} {includes} -all")
    for n in range(10):
        dns.set(f"spf{n}.{DOMAIN}", "TXT", "v=spf1 ip4:198.51.100.9 ~all")

    diagnosis = check(config, dns, test_ca)

    [error] = found(diagnosis, "spf", "error")
    assert "takes 11 DNS look-ups; receivers stop at 10" in error.message


def test_two_spf_records_are_an_error(configure: Configure, dns: FakeDns, test_ca: TestCA) -> None:
    config = configure()
    dns.set(DOMAIN, "TXT", f"v=spf1 a:{RELAY} -all", "v=spf1 include:sendgrid.net -all")

    [error] = found(check(config, dns, test_ca), "spf", "error")

    assert error.message.startswith(f"{DOMAIN}: 2 SPF records (")
    assert "merge them into one" in error.message


def test_the_return_path_domain_gets_its_own_spf_check(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(bounces={"address": f"bounces@returns.{DOMAIN}"})
    dns.set(f"returns.{DOMAIN}", "MX", f"10 mx.{DOMAIN}")

    diagnosis = check(config, dns, test_ca)

    spf_findings = found(diagnosis, "spf")
    assert [(f.subject, f.level) for f in spf_findings] == [
        (DOMAIN, "ok"),
        (f"returns.{DOMAIN}", "error"),
    ]
    assert spf_findings[1].record == f'returns.{DOMAIN}. IN TXT "v=spf1 a:{RELAY} ~all"'
    # The bounce domain's MX is the one checked when a mailbox is read.
    assert found(diagnosis, "mx")[0].subject == f"returns.{DOMAIN}"


def test_sendgrid_needs_its_dkim_cnames(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(provider="sendgrid")
    for n in (1, 2):
        dns.set(f"s{n}._domainkey.{DOMAIN}", "CNAME", f"s{n}.domainkey.u1234.wl123.sendgrid.net")
    dns.set(f"s2._domainkey.{DOMAIN}", "CNAME")  # s2 never published

    diagnosis = check(config, dns, test_ca)

    # SendGrid never returns to the From domain: its SPF needs no include:sendgrid.net.
    assert found(diagnosis, "spf", "error") == []
    dkim_findings = found(diagnosis, "dkim")
    assert [(f.subject, f.level) for f in dkim_findings] == [
        (f"s1._domainkey.{DOMAIN}", "ok"),
        (f"s2._domainkey.{DOMAIN}", "error"),
    ]
    assert dkim_findings[1].record is not None
    assert dkim_findings[1].record.startswith(
        f"s2._domainkey.{DOMAIN}. IN CNAME s2.domainkey.u1234567.wl123.sendgrid.net."
    )
    assert diagnosis.return_path_domain is None


def test_sendgrid_set_up_right_is_ok(configure: Configure, dns: FakeDns, test_ca: TestCA) -> None:
    config = configure(provider="sendgrid", sendgrid={"dkim_selectors": ["em1", "em2"]})
    dns.set(DOMAIN, "TXT", "v=spf1 include:sendgrid.net ~all")
    for n in (1, 2):
        dns.set(f"em{n}._domainkey.{DOMAIN}", "CNAME", f"s{n}.domainkey.u1234.wl123.sendgrid.net")

    diagnosis = check(config, dns, test_ca)

    assert diagnosis.errors == 0, diagnosis.findings
    assert [f.subject for f in found(diagnosis, "dkim", "ok")] == [
        f"em1._domainkey.{DOMAIN}",
        f"em2._domainkey.{DOMAIN}",
    ]


# -- DKIM -----------------------------------------------------------------------------


def test_a_published_key_that_is_not_ours_is_an_error(
    configure: Configure, dns: FakeDns, test_ca: TestCA, signing_key: SigningKey
) -> None:
    config = configure()
    other = SigningKey(DOMAIN, "s1", generate_key(2048), "other")
    dns.set(signing_key.record_name, "TXT", other.txt_record)

    [error] = found(check(config, dns, test_ca), "dkim", "error")

    assert "does not match the private key we sign with" in error.message
    assert error.record == signing_key.zone_line


@pytest.mark.parametrize(
    ("published", "says"),
    [
        ("v=DKIM1; k=rsa; p=", "p= is empty: the key is revoked"),
        ("v=DKIM1; k=rsa; p=not-base64!", "p= is not a base64 RSA public key"),
        ("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "only RSA"),
    ],
)
def test_an_unusable_published_key_is_an_error(
    configure: Configure,
    dns: FakeDns,
    test_ca: TestCA,
    signing_key: SigningKey,
    published: str,
    says: str,
) -> None:
    config = configure()
    dns.set(signing_key.record_name, "TXT", published)

    [error] = found(check(config, dns, test_ca), "dkim", "error")

    assert says in error.message


def test_a_1024_bit_key_works_with_a_warning(
    configure: Configure, dns: FakeDns, test_ca: TestCA, key_file: Path
) -> None:
    config = configure(smtp={"dkim": {"selector": "old"}})
    short = SigningKey(DOMAIN, "old", generate_key(1024), "short")
    key_file.unlink()
    key_file.write_bytes(
        short.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    dns.set(short.record_name, "TXT", short.txt_record)

    [warning] = found(check(config, dns, test_ca), "dkim")

    assert warning.level == "warning"
    assert "has 1024 bits; 2048 is the norm now" in warning.message


def test_smtp_without_dkim_signing_is_a_warning_and_weakens_alignment(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(smtp={"dkim": None})

    diagnosis = check(config, dns, test_ca)

    [dkim] = found(diagnosis, "dkim")
    assert dkim.level == "warning"
    assert "smtp.dkim is not set" in dkim.message
    [alignment] = found(diagnosis, "alignment")
    assert alignment.level == "warning"
    assert "no DKIM signature of ours" in alignment.message


def test_a_missing_private_key_is_an_error_naming_the_setting(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(smtp={"dkim": {"selector": "s1", "private_key_file": "dkim/gone.pem"}})

    [error] = found(check(config, dns, test_ca), "dkim", "error")

    assert error.message.startswith("smtp.dkim.private_key_file: ")
    assert "gone.pem does not exist; make a key with 'newsletter dkim keygen --selector s1'" in (
        error.message
    )


# -- DMARC and alignment --------------------------------------------------------------


def test_no_dmarc_record_is_an_error_with_one_to_publish(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure()
    dns.set(f"_dmarc.{DOMAIN}", "TXT")

    diagnosis = check(config, dns, test_ca)

    [error] = found(diagnosis, "dmarc", "error")
    assert "Gmail and Yahoo require one" in error.message
    assert error.record == (
        f'_dmarc.{DOMAIN}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"'
    )


def test_p_none_without_reports_gets_advice(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure()
    dns.set(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=none")

    warnings = found(check(config, dns, test_ca), "dmarc", "warning")

    assert len(warnings) == 2
    assert "p=none only asks for reports" in warnings[0].message
    assert "move to p=quarantine, then p=reject" in warnings[0].message
    assert "no rua=" in warnings[1].message
    assert warnings[1].record == (
        f'_dmarc.{DOMAIN}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"'
    )


def test_a_subdomain_finds_the_organisational_domains_dmarc_record(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(**{"from": {"email": f"letters@news.{DOMAIN}"}})

    [ok] = found(check(config, dns, test_ca), "dmarc", "ok")

    assert ok.subject == f"_dmarc.{DOMAIN}"


def test_a_return_path_on_another_domain_breaks_spf_alignment(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(bounces={"address": "bounces@mailer.example.net"})
    dns.set("mailer.example.net", "TXT", f"v=spf1 a:{RELAY} -all")
    dns.set("mailer.example.net", "MX", f"10 mx.{DOMAIN}")

    [alignment] = found(check(config, dns, test_ca), "alignment")

    assert alignment.level == "warning"
    assert "the return path mailer.example.net is not aligned" in alignment.message


def test_nothing_aligned_is_an_error(configure: Configure, dns: FakeDns, test_ca: TestCA) -> None:
    config = configure(
        bounces={"address": "bounces@mailer.example.net"},
        smtp={"dkim": {"selector": "s1", "domain": "mailer.example.net"}},
    )

    [alignment] = found(check(config, dns, test_ca), "alignment")

    assert alignment.level == "error"
    assert "DMARC fails" in alignment.message


def test_a_signature_nobody_can_verify_counts_for_no_alignment(
    configure: Configure, dns: FakeDns, test_ca: TestCA, signing_key: SigningKey
) -> None:
    config = configure()
    dns.set(signing_key.record_name, "TXT")  # the key was never published

    diagnosis = check(config, dns, test_ca)

    assert [f.level for f in found(diagnosis, "dkim")] == ["error"]
    [alignment] = found(diagnosis, "alignment")
    assert alignment.level == "warning"
    assert (
        f"DKIM d={DOMAIN} is not aligned (its key is not in place: see the dkim error)"
        in alignment.message
    )
    assert "the return path breastfeedingworld.example is aligned" in alignment.message


def test_sendgrid_without_domain_authentication_aligns_nothing(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    """Until the domain is authenticated at SendGrid (the CNAMEs the dkim check asks
    for), SendGrid signs as itself and bounces to its own domain: DMARC fails."""
    config = configure(provider="sendgrid", sendgrid={"dkim_selectors": ["em1", "em2"]})
    dns.set(DOMAIN, "TXT", "v=spf1 include:sendgrid.net ~all")

    diagnosis = check(config, dns, test_ca)

    assert [f.level for f in found(diagnosis, "dkim")] == ["error", "error"]
    [alignment] = found(diagnosis, "alignment")
    assert alignment.level == "error"
    assert alignment.message == (
        f"From {DOMAIN}: DKIM d={DOMAIN} is not aligned (its key is not in place: see the "
        "dkim error); SendGrid's return path is its own until the domain is authenticated: "
        "DMARC fails, and Gmail and Yahoo reject or junk the mail; authenticate the domain "
        "at SendGrid (Settings > Sender Authentication) and publish the CNAMEs the dkim "
        "check names"
    )


# -- MX ------------------------------------------------------------------------------


def test_a_bounce_domain_without_mx_is_an_error(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure()
    dns.set(DOMAIN, "MX")

    [error] = found(check(config, dns, test_ca), "mx", "error")

    assert "has no MX record" in error.message
    assert error.record == f"{DOMAIN}. IN MX 10 imap.{DOMAIN}. (or your mail provider's MX host)"


def test_mx_is_not_checked_without_a_mailbox(
    configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    config = configure(mailbox={"url": None})
    dns.set(DOMAIN, "MX")

    assert found(check(config, dns, test_ca), "mx") == []


# -- DNS failures and the nameserver option -------------------------------------------


def test_a_nameserver_that_fails_is_reported_not_a_traceback(
    runner: CliRunner, configure: Configure, dns: FakeDns, test_ca: TestCA
) -> None:
    configure()
    dns.fail(f"_dmarc.{DOMAIN}")

    code, output = run_doctor(runner, dns, test_ca)

    assert code == 1
    assert (
        f"error    dmarc      could not check: the nameserver {dns.nameserver} gave no answer "
        f"for TXT _dmarc.{DOMAIN} (the nameserver refused or failed); try again later"
    ) in output


@pytest.mark.parametrize(
    "given", ["127.0.0.1:0", "127.0.0.1:http", ":53", "[::1", "dns.example.org"]
)
def test_a_malformed_nameserver_is_one_line(runner: CliRunner, given: str) -> None:
    result = runner.invoke(cli, ["doctor", "--nameserver", given])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: --nameserver {given!r}: give an address and optional port, like 127.0.0.1:5353\n"
    )
