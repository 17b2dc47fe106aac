"""DKIM keys: the private key we sign with, and the public key a domain publishes.

One home for what a key is, so that the signer (:mod:`.dkim_signing`), ``newsletter
dkim keygen`` and ``newsletter doctor`` agree on it: the private key comes from
``smtp.dkim.private_key_file`` or, when that is not set, from the variable named by
``smtp.dkim.private_key_env`` (a secret: never in the config); the record published
at ``<selector>._domainkey.<domain>`` is ``v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.config import Config, env_secret
from newsletter.errors import ConfigError

MINIMUM_BITS = 1024  # receivers ignore shorter keys (RFC 8301)
RECOMMENDED_BITS = 2048
# A TXT record is made of strings of at most 255 bytes each; a 2048-bit key needs two.
TXT_STRING_MAX = 255


@dataclass(frozen=True)
class SigningKey:
    """The private key of ``smtp.dkim``, parsed once, and where it must be published."""

    domain: str
    selector: str
    private_key: rsa.RSAPrivateKey
    source: str  # where it came from, for messages: a file name or $VARIABLE

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def bits(self) -> int:
        return self.private_key.key_size

    @property
    def public_key_base64(self) -> str:
        return public_key_base64(self.private_key.public_key())

    @property
    def txt_record(self) -> str:
        """The record's text, as one string: ``v=DKIM1; k=rsa; p=...``."""
        return f"v=DKIM1; k=rsa; p={self.public_key_base64}"

    @property
    def zone_line(self) -> str:
        """The record as a zone-file line, split into TXT strings that DNS can hold."""
        return zone_txt_line(self.record_name, self.txt_record)


def public_key_base64(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def zone_txt_line(name: str, text: str) -> str:
    """``name. IN TXT ( "..." "..." )``: ``text`` split into strings of at most 255 bytes."""
    pieces = [text[start : start + TXT_STRING_MAX] for start in range(0, len(text), TXT_STRING_MAX)]
    quoted = " ".join(f'"{piece}"' for piece in pieces)
    return f"{name}. IN TXT {quoted}" if len(pieces) == 1 else f"{name}. IN TXT ( {quoted} )"


def load_signing_key(config: Config) -> SigningKey | None:
    """The key of ``smtp.dkim``, checked; None when DKIM signing is not configured."""
    settings = config.smtp.dkim
    if settings is None:
        return None
    domain = settings.domain or config.sender.email.rpartition("@")[2].lower()
    if settings.private_key_file:
        path = config.root / settings.private_key_file
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"smtp.dkim.private_key_file: {path} does not exist; make a key with "
                f"'newsletter dkim keygen --selector {settings.selector}'"
            ) from None
        except OSError as error:
            raise ConfigError(
                f"smtp.dkim.private_key_file: cannot read {path} ({error.strerror})"
            ) from None
        source = str(path)
        where = "smtp.dkim.private_key_file"
    else:
        text = env_secret(settings.private_key_env)
        if text is None:
            raise ConfigError(
                f"smtp.dkim is set but neither smtp.dkim.private_key_file nor "
                f"{settings.private_key_env} is; export {settings.private_key_env} with the "
                "PEM private key, or set private_key_file"
            )
        pem = text.encode("utf-8")
        source = f"${settings.private_key_env}"
        where = settings.private_key_env
    key = parse_private_key(pem, where=f"{where} ({source})")
    return SigningKey(domain=domain, selector=settings.selector, private_key=key, source=source)


def parse_private_key(pem: bytes, *, where: str) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key in PEM, at least :data:`MINIMUM_BITS` long."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError(
            f"{where}: the private key is encrypted; DKIM signing needs it without a "
            "passphrase (keep the file readable by you only)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{where}: not a PEM private key; make one with 'newsletter dkim keygen'"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{where}: the key is not RSA; DKIM signing here uses RSA keys")
    if key.key_size < MINIMUM_BITS:
        raise ConfigError(
            f"{where}: the key has {key.key_size} bits; receivers ignore DKIM keys under "
            f"{MINIMUM_BITS} bits: make a {RECOMMENDED_BITS}-bit one with "
            "'newsletter dkim keygen'"
        )
    return key


def generate_key(bits: int = RECOMMENDED_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_private_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    """Write ``key`` as PEM to a new file readable by its owner only (mode 0600).

    Refuses to replace an existing file: a key in use must not be lost to a typo.
    """
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder: choose another --out for the key")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Created with 0600 from the start: never readable by others, not even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists; it may be the key you sign with: choose another "
            "selector or file, or remove it first"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot write the key there ({error.strerror}); choose another --out"
        ) from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)


@dataclass(frozen=True)
class PublishedKey:
    """A DKIM key record as found in DNS: its tags, and the key if it parses."""

    tags: dict[str, str]
    key: rsa.RSAPublicKey | None
    problem: str | None  # why the record is not a usable key

    @property
    def bits(self) -> int:
        return self.key.key_size if self.key is not None else 0


def parse_key_record(text: str) -> PublishedKey:
    """Read a ``v=DKIM1; k=rsa; p=...`` record (RFC 6376 3.6.1)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags[name.strip().lower()] = re.sub(r"\s+", "", value)
    if tags.get("v", "DKIM1") != "DKIM1":
        return PublishedKey(tags, None, f"v={tags['v']} is not DKIM1")
    if tags.get("k", "rsa").lower() != "rsa":
        return PublishedKey(tags, None, f"k={tags['k']}: only RSA keys are checked here")
    if "p" not in tags:
        return PublishedKey(tags, None, "the record has no p= (public key) tag")
    if tags["p"] == "":
        return PublishedKey(tags, None, "p= is empty: the key is revoked")
    try:
        der = base64.b64decode(tags["p"], validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        return PublishedKey(tags, None, "p= is not a base64 RSA public key")
    if not isinstance(key, rsa.RSAPublicKey):
        return PublishedKey(tags, None, "p= is not an RSA public key")
    return PublishedKey(tags, key, None)
