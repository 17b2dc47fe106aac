"""The fast paths for link URLs give exactly what markdown-it's own functions give."""

from __future__ import annotations

import random
from pathlib import Path

import mdurl
import pytest
from markdown_it.common.normalize_url import normalizeLink, normalizeLinkText
from markdown_it.helpers import parseLinkDestination

from newsletter.config import Config
from newsletter.issues import read_issue
from newsletter.markdown_links import normalize_link, normalize_link_text, parse_destination

TRICKY_URLS = [
    "https://example.org",
    "https://example.org/",
    "https://example.org/page/17",
    "http://example.org/a?b=c&d=e#f",
    "https://EXAMPLE.org/Path",
    "HTTPS://example.org/",
    "https://example.org/a b",
    "https://example.org/%",
    "https://example.org/%4",
    "https://example.org/%41",
    "https://example.org/%zz",
    "https://example.org/%E2%82%AC",
    "https://example.org/caf\u00e9",
    "https://b\u00fccher.example/",
    "https://xn--bcher-kva.example/",
    "https://example.org/xn--bcher-kva",
    "https://example.org/[x]",
    "https://[::1]/",
    "https://[2001:db8::1]:8080/path",
    'https://example.org/"quoted"',
    "https://example.org/'single'",
    "https://example.org/back\\slash",
    "https://example.org/<tag>",
    "https://example.org/{braces}|pipe^caret`tick",
    "https://user:pass@example.org/",
    "https://user@example.org/",
    "https://example.org:8080/",
    "https://example.org:/",
    "https://example.org/a@b",
    "https://exa_mple.org/",
    "https://-example-.org/",
    "https://example..org/",
    "https://.example.org/",
    "https://example.org./",
    "https://" + "a" * 63 + ".org/",
    "https://" + "a" * 64 + ".org/",
    "https://" + ".".join(["a" * 63] * 4) + "/",
    "https://" + ".".join(["a" * 63] * 5) + "/",
    "https:/example.org",
    "https:example.org",
    "https://",
    "https:///path",
    "//example.org/path",
    "mailto:someone@example.org",
    "mailto:som\u00e9one@b\u00fccher.example",
    "javascript:alert(1)",
    "data:image/png;base64,AAAA",
    "/relative/path?q=1",
    "relative.html",
    "#fragment",
    "?query",
    "",
    " https://example.org/ ",
    "https://example.org/\t",
    "https://example.org/\u2028",
    "https://example.org/emoji-\U0001f600",
    "https://example.org/\ud800",
    "https://example.org/?q=a+b&r=%20#x?y",
    "https://example.org/#a#b",
    "https://example.org/;params",
    "https://example.org/$,!~*()",
    "https://example.org/path%2",
    "https://example.org/a%2Fb",
    "https://example.org/&amp;",
]

ALPHABET = "aZ09-._~:/?#[]@!$&'()*+,;=% \"\\<>`{}|^\u00e9\u00fc\u20ac\U0001f600\t\nxn"


def generated_urls(count: int) -> list[str]:
    generator = random.Random(11)  # fixed: a failure must be reproducible
    prefixes = ["https://", "http://", "https://example.org", "https://ex.org/", "mailto:", ""]
    return [
        generator.choice(prefixes)
        + "".join(generator.choice(ALPHABET) for _ in range(generator.randint(0, 12)))
        for _ in range(count)
    ]


# One test over all of them (not one per URL): thousands of test items would cost seconds.
def test_links_are_normalised_exactly_as_markdown_it_does() -> None:
    different = [
        (url, normalize_link(url), normalizeLink(url))
        for url in TRICKY_URLS + generated_urls(5_000)
        if normalize_link(url) != normalizeLink(url)
        or normalize_link_text(url) != normalizeLinkText(url)
    ]
    assert different == []


def test_link_destinations_end_exactly_where_markdown_it_ends_them() -> None:
    different = []
    for url in TRICKY_URLS + generated_urls(2_000):
        for source in (url, f"{url}) and text", f"{url} 'title')", f"({url}))", f"<{url}>"):
            for start in range(min(len(source), 3)):
                fast = parse_destination(source, start, len(source))
                original = parseLinkDestination(source, start, len(source))
                if (fast.ok, fast.pos, fast.str) != (original.ok, original.pos, original.str):
                    different.append((source, start))
    assert different == []


def test_plain_links_skip_the_url_library(
    project: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    original_parse = mdurl.parse

    def counting_parse(url: str, *args: object, **kwargs: object) -> object:
        parsed.append(url)
        return original_parse(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mdurl, "parse", counting_parse)
    links = "\n\n".join(f"See [page {n}](https://example.org/page/{n})." for n in range(50))
    path = project / "issues" / "2026-11-30-links.md"
    odd = "https://b\u00fccher.example/caf\u00e9"
    path.write_text(f"---\ntitle: Links\n---\n\n{links}\n\n[odd]({odd})\n", encoding="utf-8")

    issue = read_issue(path, topics=config.topic_ids)

    assert len(issue.links) == 51
    assert issue.links[-1] == "https://xn--bcher-kva.example/caf%C3%A9"
    assert parsed == [odd]  # only the URL that needs it went through mdurl
