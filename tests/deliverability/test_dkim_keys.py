"""``newsletter dkim keygen``, and the signer's canonicalisation against dkimpy's."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import stat
from pathlib import Path

import dkim
import pytest
import yaml
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from dkim.canonicalization import Relaxed

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.deliverability.dkim_keys import (
    SigningKey,
    generate_key,
    load_signing_key,
    parse_key_record,
)
from newsletter.deliverability.dkim_signing import DkimSigner, relaxed_body
from newsletter.errors import ConfigError

DOMAIN = "breastfeedingworld.example"


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_record(
    runner: CliRunner, project: Path
) -> None:
    result = runner.invoke(cli, ["dkim", "keygen", "--selector", "s1"])

    assert result.exit_code == 0, result.output
    path = project / "dkim" / "s1.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    lines = result.output.splitlines()
    assert lines[0] == "Wrote the private key to dkim/s1.pem (mode 0600; keep it secret)."
    [record_line] = [line.strip() for line in lines if "IN TXT" in line]
    assert record_line.startswith(f's1._domainkey.{DOMAIN}. IN TXT ( "v=DKIM1; k=rsa; p=')
    # The record's strings, joined as a resolver joins them, hold the file's public key.
    strings = re.findall(r'"([^"]*)"', record_line)
    assert all(len(text) <= 255 for text in strings)
    published = parse_key_record("".join(strings))
    assert published.key is not None and published.bits == 2048
    assert published.key.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert "       private_key_file: dkim/s1.pem" in lines
    assert f"       domain: {DOMAIN}" in lines


def test_keygen_never_replaces_a_key(runner: CliRunner, project: Path) -> None:
    assert runner.invoke(cli, ["dkim", "keygen", "--selector", "s1"]).exit_code == 0
    before = (project / "dkim" / "s1.pem").read_bytes()

    result = runner.invoke(cli, ["dkim", "keygen", "--selector", "s1"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {project / 'dkim' / 's1.pem'} already exists; it may be the key you sign "
        "with: choose another selector or file, or remove it first\n"
    )
    assert (project / "dkim" / "s1.pem").read_bytes() == before


def test_keygen_refuses_a_selector_that_is_not_a_dns_name(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["dkim", "keygen", "--selector", "my key"])

    assert result.exit_code == 2
    assert "Invalid value for '--selector': must be a DNS name" in result.output


def test_keygen_with_a_domain_and_a_file_of_ones_choosing(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "keys" / "mail.pem"

    result = runner.invoke(
        cli,
        ["dkim", "keygen", "--selector", "2026a", "--domain", "Mail.Example.org", "--out",
         str(out), "--bits", "1024"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "2026a._domainkey.mail.example.org. IN TXT" in result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_keygen_where_no_file_can_be_written_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "keys"
    blocker.write_text("a file, not a folder", encoding="utf-8")

    def keygen(out: Path) -> tuple[int, str]:
        result = runner.invoke(cli, ["dkim", "keygen", "--selector", "s1", "--out", str(out)])
        return result.exit_code, result.output

    assert keygen(blocker / "s1.pem") == (
        1,
        f"Error: {blocker} is a file, not a folder: choose another --out for the key\n",
    )
    assert keygen(blocker / "deeper" / "s1.pem") == (
        1,
        f"Error: {blocker / 'deeper' / 's1.pem'}: cannot write the key there (Not a "
        "directory); choose another --out\n",
    )


def test_the_keygen_a_missing_key_file_asks_for_makes_that_file(
    runner: CliRunner, project: Path
) -> None:
    """Following the error's advice word for word fixes it: the key lands in the file
    smtp.dkim.private_key_file names, not beside it."""
    config_file = project / "newsletter.yaml"
    settings = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    dkim_settings = {"selector": "s1", "private_key_file": "keys/mine.pem"}
    settings["smtp"] = {"host": "127.0.0.1", "security": "none", "dkim": dkim_settings}
    config_file.write_text(yaml.safe_dump(settings), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_signing_key(load_config(config_file))
    [advice] = re.findall(r"'(newsletter dkim keygen [^']*)'", str(refused.value))

    made = runner.invoke(cli, shlex.split(advice)[1:])

    assert made.exit_code == 0, made.output
    assert made.output.splitlines()[0] == (
        "Wrote the private key to keys/mine.pem (mode 0600; keep it secret)."
    )
    assert "       private_key_file: keys/mine.pem" in made.output.splitlines()
    key = load_signing_key(load_config(config_file))
    assert key is not None and key.source == str(project / "keys" / "mine.pem")
    assert not (project / "dkim").exists()


BODIES = [
    b"",
    b"\r\n",
    b"\r\n\r\n\r\n",
    b"one line without an end",
    b"hello  world\t\tand  tabs \t\r\n\r\n\r\n",
    b"trailing space \r\nand tab\t\r\n  indented\r\n",
    b" \r\n\t\r\n",
    b"a\r\n\r\nb\r\n\r\n",
    b"=3D=3D quoted  printable=\r\n soft break \r\n",
]


@pytest.mark.parametrize("body", BODIES)
def test_the_relaxed_body_is_dkimpys(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_the_body_hash_of_a_real_issue_is_dkimpys(project: Path) -> None:
    key = SigningKey(DOMAIN, "s1", generate_key(1024), "test")
    message = (
        b"From: letters@breastfeedingworld.example\r\nTo: a@example.org\r\n"
        b"Subject: x\r\n\r\n" + (project / "issues" / "2026-11-26-stem-cells-in-breast-milk.md")
        .read_bytes().replace(b"\n", b"  \t \r\n")
    )  # fmt: skip
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )

    ours = dkim.util.parse_tag_value(DkimSigner(key).signature(message)[16:])
    theirs = dkim.util.parse_tag_value(
        dkim.sign(message, b"s1", DOMAIN.encode(), pem, canonicalize=(b"relaxed", b"relaxed"))[16:]
    )

    assert ours[b"bh"] == theirs[b"bh"]
    body = message.split(b"\r\n\r\n", 1)[1]
    assert ours[b"bh"] == base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
