"""The copy of an email that goes into a preview iframe.

Mail clients decide dark mode from the reader's system setting; an editor's browser
has one setting, so a media query alone would show them only one of the two looks.
The preview therefore pins the colour scheme in the copy it serves: in the light copy
``(prefers-color-scheme: dark)`` never matches, in the dark copy it always does, and
the ``color-scheme`` meta tag says the same so the canvas and form controls follow.
This works the same in every browser. (Setting ``color-scheme: dark`` on the iframe
element does not reach the iframe's media queries in Chromium 156, measured.)
"""

from __future__ import annotations

import re
from typing import Literal

Scheme = Literal["light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("light", "dark")

# Media features that are always or never true, to stand in for the colour scheme one.
_ALWAYS = "(min-width: 0px)"
_NEVER = "(max-width: 0px)"

_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.IGNORECASE | re.DOTALL)
_SCHEME_FEATURE = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)", re.IGNORECASE)
_COLOR_SCHEME_META = re.compile(
    r"<meta\s+name=[\"'](?:supported-)?color-schemes?[\"'][^>]*>", re.IGNORECASE
)
_HEAD_OPEN = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def force_color_scheme(html: str, scheme: Scheme) -> str:
    """``html`` with its colour-scheme media queries pinned to ``scheme``."""

    def pin(feature: re.Match[str]) -> str:
        return _ALWAYS if feature[1].lower() == scheme else _NEVER

    def rewrite(block: re.Match[str]) -> str:
        return block[1] + _SCHEME_FEATURE.sub(pin, block[2]) + block[3]

    # Only inside <style> blocks: an article about CSS may quote the query in its text.
    pinned = _STYLE_BLOCK.sub(rewrite, html)
    # The email's own meta says "light dark"; the pinned copy supports one scheme only.
    return _COLOR_SCHEME_META.sub(f'<meta name="color-scheme" content="{scheme}">', pinned)


def frame_document(html: str, scheme: Scheme) -> str:
    """The email as served into a preview iframe: scheme pinned, links open in a new tab.

    The iframe is sandboxed without navigation rights, so a link clicked in it can only
    open a new tab (``<base target="_blank">``), where the editor can check where it goes.
    """
    pinned = force_color_scheme(html, scheme)
    head = _HEAD_OPEN.search(pinned)
    base = '<base target="_blank">'
    if head is None:
        return base + pinned
    return pinned[: head.end()] + base + pinned[head.end() :]
