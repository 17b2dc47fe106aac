"""Feeds checked against their specifications.

Atom: the RELAX NG schema of RFC 4287 Appendix B (``schemas/atom.rng``, converted from
the RFC's compact syntax by trang) with lxml; then the two Schematron rules embedded in
that schema (an author for every entry, a link or content in every entry) and the RFC's
one-alternate-link rule, which RELAX NG alone does not check. RSS 2.0 has no official
schema: its specification's required channel and item elements are checked by hand.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).parent / "schemas"
ATOM_RNG = SCHEMAS / "atom.rng"
ATOM = "http://www.w3.org/2005/Atom"
SCHEMATRON = "http://www.ascc.net/xml/schematron"  # the pre-ISO namespace the RFC uses


@functools.cache
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(ATOM_RNG)))


def atom_problems(document: bytes) -> list[str]:
    """Why ``document`` is not an Atom feed or entry document by RFC 4287's schema;
    empty when it is valid."""
    tree = etree.fromstring(document)
    schema = atom_schema()
    problems = [] if schema.validate(tree) else [str(error) for error in schema.error_log]
    return problems + _schematron_failures(tree) + _duplicate_alternates(tree)


@functools.cache
def schematron_asserts() -> list[tuple[str, str, str]]:
    """(context, test, message) of each Schematron assert embedded in the schema."""
    schema = etree.parse(str(ATOM_RNG))
    return [
        (rule.get("context", ""), check.get("test", ""), check.text or "")
        for rule in schema.iterfind(f".//{{{SCHEMATRON}}}rule")
        for check in rule.iterfind(f"{{{SCHEMATRON}}}assert")
    ]


def _schematron_failures(tree: etree._Element) -> list[str]:
    """The embedded asserts, evaluated as the XPath 1.0 expressions they are."""
    namespaces = {"atom": ATOM}
    failures = []
    for context, test, message in schematron_asserts():
        for node in tree.xpath(f"self::{context} | .//{context}", namespaces=namespaces):
            if not node.xpath(f"boolean({test})", namespaces=namespaces):
                failures.append(f"{tree.getroottree().getpath(node)}: {message}")
    return failures


def _duplicate_alternates(tree: etree._Element) -> list[str]:
    """RFC 4287 4.1.1 and 4.1.2, a MUST that RELAX NG cannot say: a feed or entry has at
    most one alternate link per combination of type and hreflang."""
    problems = []
    for owner in tree.xpath(
        "self::atom:feed | self::atom:entry | .//atom:entry", namespaces={"atom": ATOM}
    ):
        seen: set[tuple[str, str]] = set()
        for link in owner.iterfind(f"{{{ATOM}}}link"):
            if link.get("rel", "alternate") != "alternate":
                continue
            key = (link.get("type", ""), link.get("hreflang", ""))
            if key in seen:
                path = tree.getroottree().getpath(owner)
                problems.append(
                    f"{path}: more than one alternate link with type and hreflang {key}"
                )
            seen.add(key)
    return problems


# RSS 2.0 (https://www.rssboard.org/rss-specification): a channel must have title, link
# and description; an item must have at least a title or a description.
RSS_CHANNEL_REQUIRED = ("title", "link", "description")


def rss_problems(document: bytes) -> list[str]:
    """Why ``document`` is not an RSS 2.0 feed by the specification's required elements."""
    root = etree.fromstring(document)
    if root.tag != "rss" or root.get("version") != "2.0":
        return [
            f'the root is <{root.tag} version="{root.get("version")}">, not <rss version="2.0">'
        ]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [f"{len(channels)} <channel> elements, not one"]
    channel = channels[0]
    problems = [
        f"<channel> has no <{name}>"
        for name in RSS_CHANNEL_REQUIRED
        if not (channel.findtext(name) or "").strip()
    ]
    for number, item in enumerate(channel.iterfind("item"), start=1):
        if item.find("title") is None and item.find("description") is None:
            problems.append(f"<item> {number} has neither <title> nor <description>")
    return problems
