"""Small inline SVG charts for the HTML report: bars, stacked bars, a funnel, lines.

Written by hand rather than with a chart library: the report needs three simple chart
shapes that must work offline, print, and be accessible (``role="img"`` with a
``<title>`` and ``<desc>`` named by ``aria-labelledby``, a ``<title>`` tooltip on every
mark). pygal, the light option, puts ``<script>`` tags pointing at a CDN into its SVG
unless configured away and labels charts with plain text only; matplotlib is far too
heavy for this. Every text that comes from the data is escaped here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

# Okabe-Ito: told apart with the common colour-vision deficiencies, and in grey print.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442"]
WIDTH = 720
_ids = itertools.count(1)


def _frame(title: str, description: str, height: int, body: list[str]) -> Markup:
    number = next(_ids)
    title_id, desc_id = f"chart-{number}-title", f"chart-{number}-desc"
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-labelledby="{title_id} {desc_id}" class="chart">'
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, width: float, height: float, color: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'fill="{color}"><title>{escape(tip)}</title></rect>'
    )


def _legend(names: Sequence[str], y: float) -> list[str]:
    """One row of keys above the plot, where no axis label can reach it."""
    parts, x = ['<g class="legend">'], 60.0
    for index, name in enumerate(names):
        parts.append(_rect(x, y - 10, 12, 12, PALETTE[index % len(PALETTE)], name))
        parts.append(_text(x + 16, y, name))
        x += 24 + 7 * len(name)
    return [*parts, "</g>"]


def nice_ticks(largest: float, *, most: int = 5) -> list[int]:
    """Whole, distinct ticks from 0 for an axis of counts: steps of 1, 2 or 5 times a
    power of ten ("nice numbers"), at most ``most`` steps, the last at or above
    ``largest``. 3 gives 0, 1, 2, 3; 14 gives 0, 5, 10, 15; 0 gives 0, 1."""
    top = max(math.ceil(largest), 1)
    power = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * power
            if math.ceil(top / step) <= most:
                return list(range(0, step * math.ceil(top / step) + 1, step))
        power *= 10


def _label_under(x: float, y: float, width: float, label: str, full: str) -> str:
    """An axis label centred at ``x``, cut with an ellipsis to fit ``width`` (10 px
    text is about 6 px a character), the whole of it in its tooltip."""
    fits = max(int(width / 6), 4)
    shown = label if len(label) <= fits else label[: fits - 1].rstrip() + "…"
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="10" text-anchor="middle" '
        f'class="axis-label"><title>{escape(full)}</title>{escape(shown)}</text>'
    )


def funnel(
    title: str, steps: Sequence[tuple[str, int]], *, count: Callable[[int], str] = str
) -> Markup:
    """Horizontal bars, each step as wide as its share of the first (``count`` writes
    a number: the report's language)."""
    row, label_width = 34, 150
    height = row * len(steps) + 10
    top = max((value for _, value in steps), default=0) or 1
    body = []
    for index, (name, value) in enumerate(steps):
        y = 5 + index * row
        width = (WIDTH - label_width - 90) * value / top
        share = f" ({100 * value / steps[0][1]:.1f}%)" if steps[0][1] else ""
        body.append(_text(label_width - 8, y + 18, name, anchor="end"))
        tip = f"{name}: {count(value)}"
        body.append(_rect(label_width, y + 4, width, row - 10, PALETTE[0], tip))
        body.append(_text(label_width + width + 6, y + 18, f"{count(value)}{share}"))
    description = "; ".join(f"{name}: {count(value)}" for name, value in steps)
    return _frame(title, description, height, body)


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    stacked: bool = True,
    tips: Sequence[str] | None = None,
    count: Callable[[int], str] = str,
) -> Markup:
    """Vertical bars per label (stacked, or side by side): the legend above, each
    label under its bar (``tips``: the full text of each label's tooltip)."""
    height, left, bottom, top_pad = 300, 60, 30, 40
    plot_height = height - bottom - top_pad
    totals = [
        sum(values[i] for _, values in series) if stacked else max(v[i] for _, v in series)
        for i in range(len(labels))
    ]
    ticks = nice_ticks(max(totals, default=0))
    top = ticks[-1]
    slot = (WIDTH - left - 10) / max(len(labels), 1)
    group_width = min(slot * 0.7, 80)
    bar_width = group_width / (1 if stacked else max(len(series), 1))
    every = math.ceil(48 / slot)  # a label needs some 48 px: then every n-th bar gets one
    body = _axis(left, top_pad, plot_height, ticks, count)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - group_width) / 2
        base: float = top_pad + plot_height
        for s, (name, values) in enumerate(series):
            size = plot_height * values[i] / top
            color = PALETTE[s % len(PALETTE)]
            bar_x = x if stacked else x + s * bar_width
            body.append(
                _rect(
                    bar_x,
                    base - size,
                    bar_width,
                    size,
                    color,
                    f"{label}, {name}: {count(values[i])}",
                )
            )
            if stacked:
                base -= size
        if i % every == 0:
            full = tips[i] if tips else label
            body.append(
                _label_under(
                    x + group_width / 2, top_pad + plot_height + 16, slot * every - 6, label, full
                )
            )
    body += _legend([name for name, _ in series], 18)
    description = _describe(labels, series, count)
    return _frame(title, description, height, body)


def lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    count: Callable[[int], str] = str,
) -> Markup:
    """One line per series over ``labels`` (weeks), with a legend."""
    height, left, bottom, top_pad = 300, 60, 30, 40
    plot_height = height - bottom - top_pad
    ticks = nice_ticks(max((max(values, default=0) for _, values in series), default=0))
    top = ticks[-1]
    step = (WIDTH - left - 40) / max(len(labels) - 1, 1)
    body = _axis(left, top_pad, plot_height, ticks, count)
    for s, (name, values) in enumerate(series):
        points = " ".join(
            f"{left + i * step:.1f},{top_pad + plot_height - plot_height * v / top:.1f}"
            for i, v in enumerate(values)
        )
        color = PALETTE[s % len(PALETTE)]
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        if len(values) <= 60:  # a dot per point: a single week is otherwise invisible
            for point, value, label in zip(points.split(), values, labels, strict=True):
                x, y = point.split(",")
                body.append(
                    f'<circle cx="{x}" cy="{y}" r="3" fill="{color}">'
                    f"<title>{escape(label)}, {escape(name)}: {count(value)}</title></circle>"
                )
    every = math.ceil(64 / step) if len(labels) > 1 else 1  # a week's label: some 64 px
    for i, label in enumerate(labels):
        if i % every == 0:
            body.append(_label_under(left + i * step, top_pad + plot_height + 16, 60, label, label))
    body += _legend([name for name, _ in series], 18)
    return _frame(title, _describe(labels, series, count), height, body)


def _axis(
    left: float,
    top_pad: float,
    plot_height: float,
    ticks: Sequence[int],
    count: Callable[[int], str] = str,
) -> list[str]:
    bottom = top_pad + plot_height
    parts = [
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{bottom}" stroke="#555"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}" stroke="#555"/>',
    ]
    for tick in ticks:
        y = bottom - plot_height * tick / ticks[-1]
        if tick:
            parts.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'class="tick">{count(tick)}</text>'
        )
    return parts


def _describe(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    count: Callable[[int], str] = str,
) -> str:
    """The data in words, for screen readers (the last few points when there are many)."""
    shown = list(range(len(labels)))[-12:]
    parts = [
        f"{labels[i]}: " + ", ".join(f"{name} {count(values[i])}" for name, values in series)
        for i in shown
    ]
    return "; ".join(parts)
