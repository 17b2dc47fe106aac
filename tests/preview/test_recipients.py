"""Preview as a subscriber: real values from the store where it exists, else sample data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from newsletter.config import Config
from newsletter.preview import Workspace
from newsletter.preview.app import PreviewApp
from newsletter.store import Store, open_store
from newsletter.tokens import DEVELOPMENT_SECRET, Signer
from tests.preview.conftest import PAGE, SEED_STEM, page_text
from tests.store.databases import postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, config: Config, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """The project's subscriber store, with two subscribers in it."""
    if request.param == "sqlite":
        opened = open_store(config)  # newsletter.db beside newsletter.yaml
        yield from _filled(opened)
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
        yield from _filled(open_store(config))


def _filled(store: Store) -> Iterator[Store]:
    store.add("jane@example.org", name="Jane Doe", topics=["research"])
    store.add("omar@example.org", name="Omar Haddad", topics=["stories"])
    yield store
    store.close()


@pytest.fixture
def client(workspace: Workspace) -> Iterator[Client]:
    yield Client(PreviewApp(workspace))
    workspace.close()


def test_preview_as_a_subscriber_uses_their_name_and_links(store: Store, client: Client) -> None:
    jane = store.find("jane@example.org")
    assert jane is not None

    text = page_text(client, f"{PAGE}?as=JANE@example.org")

    assert f"jane@example.org: subscriber #{jane.id} (active) in" in text
    email = client.get(f"/issue/{SEED_STEM}/email.html?as=JANE@example.org").text
    assert "Hi Jane," in email
    token = re.search(r"https://news\.breastfeedingworld\.example/u/([\w.-]+)", email)
    assert token is not None
    assert Signer(DEVELOPMENT_SECRET).read_unsubscribe_token(token[1]).subscriber_id == jane.id
    assert "Jane Doe <jane@example.org>" in text  # the To header


def test_the_picker_offers_the_sample_reader_and_the_subscribers(
    store: Store, client: Client
) -> None:
    html = client.get(PAGE).text

    options = re.findall(r'<option value="([^"]*)">([^<]*)</option>', html)
    assert options == [
        ("", "Sam Reader &lt;reader@example.org&gt; (sample data)"),
        ("jane@example.org", "Jane Doe &lt;jane@example.org&gt;"),
        ("omar@example.org", "Omar Haddad &lt;omar@example.org&gt;"),
    ]


def test_an_address_that_is_no_subscriber_says_so(store: Store, client: Client) -> None:
    text = page_text(client, f"{PAGE}?as=nobody@example.org")

    assert "nobody@example.org is not a subscriber in" in text
    assert "showing sample data" in text


def test_without_a_database_the_preview_uses_sample_data_and_creates_none(
    client: Client, project: Path
) -> None:
    text = page_text(client, f"{PAGE}?as=jane@example.org")

    assert "jane@example.org: sample data" in text
    assert "not a subscriber" not in text
    assert not (project / "newsletter.db").exists()
