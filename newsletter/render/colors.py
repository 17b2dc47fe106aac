"""Colour arithmetic for the theme: dark-mode accents derived from the brand colour.

Contrast follows WCAG 2 (relative luminance; 4.5:1 for body text), so an accent stays
readable whatever brand colour an editor picks.
"""

from __future__ import annotations

import colorsys

DARK_CARD_BACKGROUND = "#1e1e1e"  # the card colour of the theme's dark mode
TEXT_CONTRAST = 4.5  # WCAG AA for normal text


def parse_hex(color: str) -> tuple[float, float, float]:
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(2 * digit for digit in value)
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def to_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def luminance(color: str) -> float:
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in parse_hex(color))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def dark_accent(color: str, background: str = DARK_CARD_BACKGROUND) -> str:
    """``color`` with the same hue, made light enough to read on a dark ``background``.

    A colour that already reads well is kept; otherwise its lightness is raised in small
    steps (keeping hue and saturation) until it reaches 4.5:1.
    """
    if contrast(color, background) >= TEXT_CONTRAST:
        return color.lower()
    hue, lightness, saturation = colorsys.rgb_to_hls(*parse_hex(color))
    while lightness < 1.0:
        lightness = min(1.0, lightness + 0.02)
        candidate = to_hex(colorsys.hls_to_rgb(hue, lightness, saturation))
        if contrast(candidate, background) >= TEXT_CONTRAST:
            return candidate
    return "#ffffff"
