"""The cached address check gives exactly email-validator's answer, only faster."""

from __future__ import annotations

import hashlib

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.store.addresses import InvalidAddress, address_hash, normalize_address

ADDRESSES = [
    "ann@example.org",
    "Ann.Lee@EXAMPLE.ORG",
    "o'connor+news@example.com",
    "a!#$%&'*+/=?^_`{|}~-z@example.net",
    "x@sub.domain.example.co.uk",
    "renée@example.fr",  # Unicode local part: the full check
    "ann@bücher.example",  # IDN domain
    "ann@xn--bcher-kva.example",
    '"quoted name"@example.org',
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 57 + ".org",
    "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 50 + ".org",
    ".ann@example.org",
    "ann.@example.org",
    "ann..lee@example.org",
    "ann@example",
    "ann@localhost",
    "ann@example.test",
    "ann@-example.org",
    "ann@exa_mple.org",
    "ann@@example.org",
    "ann example@example.org",
    "@example.org",
    "ann@",
    "ann@[192.0.2.1]",
    "Ann <ann@example.org>",
]


def validator_answer(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def our_answer(address: str) -> str | None:
    try:
        return normalize_address(address)
    except InvalidAddress:
        return None


@pytest.mark.parametrize("address", ADDRESSES)
def test_same_answer_as_email_validator(address: str) -> None:
    # Twice: the second call is served from the domain cache.
    assert our_answer(address) == validator_answer(address)
    assert our_answer(address) == validator_answer(address)


def test_the_reason_comes_from_email_validator() -> None:
    with pytest.raises(InvalidAddress) as raised:
        normalize_address("ann..lee@example.org")
    assert str(raised.value) == (
        "'ann..lee@example.org' is not a valid email address: "
        "An email address cannot have two periods in a row."
    )


def test_the_suppression_hash_ignores_case_and_spaces() -> None:
    expected = hashlib.sha256(b"ann@example.org").hexdigest()
    assert address_hash(" Ann@EXAMPLE.org ") == expected
