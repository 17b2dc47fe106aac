"""The fast paths for link URLs give exactly what markdown-it's own functions give."""

from __future__ import annotations

import random
from pathlib import Path

import mdurl
import pytest
from markdown_it import MarkdownIt
from markdown_it.common.normalize_url import normalizeLink, normalizeLinkText
from markdown_it.helpers import parseLinkDestination
from mdit_py_plugins.attrs import attrs_plugin

from newsletter.config import Config
from newsletter.render.issue_body import markdown_parser
from newsletter.render.issues import read_issue
from newsletter.render.markdown_links import normalize_link, normalize_link_text, parse_destination

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


MARKDOWN_PIECES = [
    "[",
    "]",
    "(",
    ")",
    "[a link]",
    "(https://example.org/page/1)",
    "https://example.org/x",
    "[words](https://example.org/a)",
    "[x](https://b\u00fccher.example/)",
    "[y](</p q>)",
    "*",
    "**",
    "_",
    "`",
    "\\",
    "{.button}",
    "{#id}",
    " ",
    "  ",
    "\n",
    "\n\n",
    "text",
    "![alt]",
    "<",
    ">",
    "&amp;",
    "&",
    "[ref]",
    "[ref][]",
    "[text][ref]",
    '"title"',
    " 'title'",
    "(nested (parens))",
    "%20",
    "caf\u00e9",
    "> ",
    "- ",
    "1. ",
    "# ",
    "    ",
    "javascript:alert(1)",
    "mailto:a@example.org",
    "<https://example.org/auto>",
]
# fmt: off
TRICKY_LINKS = [
    "Paragraph 17 with [a link number 17](https://example.org/page/17) and text.",
    "[*em*](https://e.org/)", "[a_b](https://e.org/)", "[a `c`](https://e.org/)",
    "[a\\]b](https://e.org/)", "[a [b](https://e.org/1)](https://e.org/2)",
    "[a](https://e.org/){.button}", "[a](https://e.org/ 'title')", "[a](https://e.org/(x))",
    "[a]( https://e.org/)", "[a](https://e.org/&amp;)", "[a&amp;b](https://e.org/)",
    "*[a](https://e.org/)*", "[a](https://e.org/)b](https://x.org/)", "[[a](https://e.org/)",
    "[a <b>](https://e.org/)", "[a:b](https://e.org/)", "[ab](javascript:alert(1))",
    "[a](https://e.org/%zz)", "[a](https://e.org/%41)", "[a\nb](https://e.org/)",
    "![a](https://e.org/i.png)", "[a](https://E.org/)", "[](https://e.org/)",
    "[a](https://e.org/#x)", "[a](http://e.org)", "[https://e.org/](https://e.org/)",
    "[a]\n(https://e.org/)", "[ref](https://e.org/)\n\n[ref]: https://x.org/",
] + [
    "*" * depth + "[deep](https://e.org/)" + "*" * depth for depth in (5, 19, 20, 21, 40)
]
# fmt: on
REFERENCE = "\n\n[ref]: https://example.org/reference 'Ref'\n"


def generated_markdown(count: int) -> list[str]:
    generator = random.Random(10)
    return [
        "".join(generator.choice(MARKDOWN_PIECES) for _ in range(generator.randint(1, 14)))
        + (REFERENCE if generator.random() < 0.3 else "")
        for _ in range(count)
    ]


@pytest.mark.slow
def test_links_are_parsed_into_the_same_tokens_as_markdown_it_does() -> None:
    stock = MarkdownIt("commonmark", {"html": False}).use(attrs_plugin)
    fast = markdown_parser()
    different = [
        source
        for source in TRICKY_LINKS + generated_markdown(4_000)
        if [token.as_dict() for token in fast.parse(source)]
        != [token.as_dict() for token in stock.parse(source)]
    ]
    assert different == []
