"""newsletter.yaml: one schema, defaults in one place, secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError

MINIMAL = """\
name: Letters
from: {email: hello@example.org}
site_url: https://news.example.org/
postal_address: 1 Example Street, Springfield
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsletter.yaml"
    path.write_text(text)
    return path


def test_defaults_fill_in_everything_not_given(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site_url == "https://news.example.org"
    assert config.assets_base_url == "https://news.example.org/assets"
    assert config.database == f"sqlite:///{tmp_path.resolve()}/newsletter.db"
    assert config.provider == "outbox"
    assert config.outbox_dir == tmp_path.resolve() / "outbox"
    assert config.sendgrid.api_host == "https://api.sendgrid.com"
    assert config.sendgrid.api_key_env == "SENDGRID_API_KEY"
    assert config.sendgrid.tracking is False
    assert config.list_id_header == "Letters <letters.news.example.org>"


def test_relative_sqlite_url_is_beside_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "database_url: sqlite:///data/list.db\n"))
    assert config.database == f"sqlite:///{tmp_path.resolve()}/data/list.db"


def test_environment_overrides_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql+psycopg://db.internal/news")
    assert load_config(write(tmp_path, MINIMAL)).database == "postgresql+psycopg://db.internal/news"


def test_postal_address_is_required(tmp_path: Path) -> None:
    text = MINIMAL.replace("postal_address: 1 Example Street, Springfield\n", "")
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert error.value.problems == ["newsletter.yaml: postal_address: required; add this key"]


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    text = MINIMAL + (
        "brand: {primary_color: pink}\ntopics:\n  - {id: News, name: N}\n"
        "sendgrid: {batch_size: 5000, api_key: SG.secret}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert error.value.problems == [
        "newsletter.yaml: topics.0.id: must be lowercase letters, digits, '-' or '_'",
        "newsletter.yaml: brand.primary_color: must be a hex colour like #b0416f",
        "newsletter.yaml: sendgrid.batch_size: Input should be less than or equal to 1000",
        "newsletter.yaml: sendgrid.api_key: unknown key; check its spelling",
    ]


# -- the From address: the plain form skips importing email-validator -------------------

_LOCALS = ["ann", "Ann.Lee", "a+news", "o_k", "x-y", "a.b.c", "a..b", ".a", "a.", "a+", "ä",
           "a b", "a" * 64, "a" * 65, "A1", "1", "a!b", '"q"']  # fmt: skip
_DOMAINS = ["example.org", "EXAMPLE.ORG", "news.example.co.uk", "a--b.de", "xn--bcher-kva.de",
            "-a.de", "a-.de", "a.123", "a.b", "localhost", "x.test", "in-addr.arpa", "x.local",
            "ex_ample.org", "example", "a." + "b" * 63 + ".org", "a." + "b" * 64 + ".org",
            ("c" * 63 + ".") * 3 + "c" * 61 + ".de", "bücher.de", "[192.0.2.1]", "x.onion",
            "x.invalid", "x.LOCALHOST", "1.2.3.4", "x.y-z.museum",
            "a.b.c.d.e.f.g.h.io"]  # fmt: skip


def _library_answer(address: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def test_plain_addresses_get_exactly_email_validators_answer() -> None:
    import random

    from newsletter.config.fields import _plain_address

    addresses = [f"{local}@{domain}" for local in _LOCALS for domain in _DOMAINS]
    generated = random.Random(14)

    def word(alphabet: str) -> str:
        return "".join(generated.choice(alphabet) for _ in range(generated.randint(1, 6)))

    for _ in range(3000):  # near the edges of the form: dots, hyphens, digits, case
        local = generated.choice("._+-").join(word("aB9") for _ in range(generated.randint(1, 3)))
        domain = ".".join(word("aZ9") + word("-aZ") for _ in range(generated.randint(1, 3)))
        addresses.append(f"{local}@{domain}.{word('aZ9')}")
        addresses.append(f"{word('aB9._+-')}@{word('aZ9-')}.{word('aZ9-')}")
    fast = 0
    for address in addresses:
        answer = _plain_address(address)
        if answer is not None:
            fast += 1
            assert answer == _library_answer(address), address
    assert fast > 250  # the common forms do take the short way


def test_special_use_domains_are_email_validators() -> None:
    import email_validator

    from newsletter.config.fields import _SPECIAL_USE_DOMAINS

    assert set(email_validator.SPECIAL_USE_DOMAIN_NAMES) == _SPECIAL_USE_DOMAINS


def test_an_unusual_from_address_is_still_checked_by_email_validator(tmp_path: Path) -> None:
    bad = MINIMAL.replace("hello@example.org", "hello@bücher..de")
    with pytest.raises(ConfigError, match=r"from\.email: not a valid address"):
        load_config(write(tmp_path, bad))
    idn = load_config(write(tmp_path, MINIMAL.replace("hello@example.org", "hi@xn--bcher-kva.de")))
    assert idn.sender.email == "hi@bücher.de"
