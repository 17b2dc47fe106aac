"""The feeds ``newsletter site build`` writes, validated against their specifications:
Atom by RFC 4287's RELAX NG schema (and its Schematron rules), RSS 2.0 by the elements
its specification requires. The same validator rejects broken feeds, so it can fail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import open_store
from tests.site.feed_schema import ATOM, atom_problems, rss_problems
from tests.site.publishing import publish, write_issue

A = f"{{{ATOM}}}"


@pytest.fixture
def built_site(runner: CliRunner, config: Config, tmp_path: Path) -> Path:
    """The site of the seed issue and one newer issue in two topics, with markup to
    escape, no author of its own and a preheader (an Atom summary)."""
    store = open_store(config)
    try:
        publish(config, store, config.issues_dir / "2026-11-26-stem-cells-in-breast-milk.md")
        publish(
            config,
            store,
            write_issue(
                config, "2027-01-10-milk-banks.md", '"Milk <banks> & you"',
                "Donated milk, [explained](https://example.org/banks).",
                preheader="How donated milk reaches babies.", topics="[research, stories]",
            ),
        )  # fmt: skip
    finally:
        store.close()
    out = tmp_path / "out"
    result = runner.invoke(cli, ["site", "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_every_atom_feed_the_site_build_writes_is_valid_rfc_4287(
    built_site: Path, config: Config
) -> None:
    feeds = sorted(built_site.rglob("feed.xml"))

    assert len(feeds) == 1 + len(config.topic_ids)
    for feed in feeds:
        assert atom_problems(feed.read_bytes()) == [], feed
    entries = etree.parse(str(built_site / "feed.xml")).findall(f"{A}entry")
    assert len(entries) == 2  # the schema saw entries, not an empty feed


def test_every_rss_feed_the_site_build_writes_has_what_rss_2_requires(built_site: Path) -> None:
    feeds = sorted(built_site.rglob("rss.xml"))

    assert len(feeds) > 1
    for feed in feeds:
        assert rss_problems(feed.read_bytes()) == [], feed
        parsed = feedparser.parse(feed.read_bytes())
        assert not parsed.bozo and parsed.version == "rss20", feed


def _remove(path: str) -> Callable[[etree._Element], None]:
    def mutate(feed: etree._Element) -> None:
        element = feed.find(path)
        assert element is not None, path
        element.getparent().remove(element)

    return mutate


def _set_text(path: str, text: str) -> Callable[[etree._Element], None]:
    def mutate(feed: etree._Element) -> None:
        element = feed.find(path)
        assert element is not None, path
        element.text = text

    return mutate


def _remove_authors(feed: etree._Element) -> None:
    for author in feed.iter(f"{A}author"):
        author.getparent().remove(author)


def _duplicate_alternate_link(feed: etree._Element) -> None:
    entry = feed.find(f"{A}entry")
    assert entry is not None
    entry.append(etree.fromstring(f'<link xmlns="{ATOM}" href="https://elsewhere.example/"/>'))


BROKEN_ATOM = {
    "an entry without id": _remove(f"{A}entry/{A}id"),
    "an entry without updated": _remove(f"{A}entry/{A}updated"),
    "an entry without title": _remove(f"{A}entry/{A}title"),
    "a feed without id": _remove(f"{A}id"),
    "an updated that is not an RFC 3339 date": _set_text(f"{A}updated", "30 Nov 2026"),
    "no author for the feed or its entries": _remove_authors,
    "two alternate links of the same type in an entry": _duplicate_alternate_link,
}


def test_the_same_validator_rejects_the_built_feed_once_broken(built_site: Path) -> None:
    document = (built_site / "feed.xml").read_bytes()
    assert atom_problems(document) == []
    accepted = []

    for breakage, mutate in BROKEN_ATOM.items():
        feed = etree.fromstring(document)
        mutate(feed)
        if not atom_problems(etree.tostring(feed)):
            accepted.append(breakage)

    assert accepted == []


def test_the_rss_check_rejects_the_built_feed_once_broken(built_site: Path) -> None:
    document = (built_site / "rss.xml").read_bytes()
    assert rss_problems(document) == []
    feed = etree.fromstring(document)
    channel = feed.find("channel")
    assert channel is not None

    for element in channel.findall("description") + channel.findall("item/title"):
        element.getparent().remove(element)
    for element in channel.findall("item/description"):
        element.getparent().remove(element)

    assert rss_problems(etree.tostring(feed)) == [
        "<channel> has no <description>",
        "<item> 1 has neither <title> nor <description>",
        "<item> 2 has neither <title> nor <description>",
    ]
