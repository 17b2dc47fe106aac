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
from collections.abc import Sequence

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
    parts, x = [], 60.0
    for index, name in enumerate(names):
        parts.append(_rect(x, y - 10, 12, 12, PALETTE[index % len(PALETTE)], name))
        parts.append(_text(x + 16, y, name))
        x += 24 + 7 * len(name)
    return parts


def funnel(title: str, steps: Sequence[tuple[str, int]]) -> Markup:
    """Horizontal bars, each step as wide as its share of the first."""
    row, label_width = 34, 150
    height = row * len(steps) + 10
    top = max((value for _, value in steps), default=0) or 1
    body = []
    for index, (name, value) in enumerate(steps):
        y = 5 + index * row
        width = (WIDTH - label_width - 90) * value / top
        share = f" ({100 * value / steps[0][1]:.1f}%)" if steps[0][1] else ""
        body.append(_text(label_width - 8, y + 18, name, anchor="end"))
        body.append(_rect(label_width, y + 4, width, row - 10, PALETTE[0], f"{name}: {value}"))
        body.append(_text(label_width + width + 6, y + 18, f"{value}{share}"))
    description = "; ".join(f"{name}: {value}" for name, value in steps)
    return _frame(title, description, height, body)


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    stacked: bool = True,
) -> Markup:
    """Vertical bars per label (stacked, or side by side), with a legend."""
    height, left, bottom, top_pad = 300, 60, 70, 30
    plot_height = height - bottom - top_pad
    totals = [
        sum(values[i] for _, values in series) if stacked else max(v[i] for _, v in series)
        for i in range(len(labels))
    ]
    top = max(totals, default=0) or 1
    slot = (WIDTH - left - 10) / max(len(labels), 1)
    bar_width = min(slot * 0.7, 80) / (1 if stacked else max(len(series), 1))
    body = _axis(left, top_pad, plot_height, top)
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.15
        base: float = top_pad + plot_height
        for s, (name, values) in enumerate(series):
            size = plot_height * values[i] / top
            color = PALETTE[s % len(PALETTE)]
            bar_x = x if stacked else x + s * bar_width
            body.append(
                _rect(bar_x, base - size, bar_width, size, color, f"{label}, {name}: {values[i]}")
            )
            if stacked:
                base -= size
        if len(labels) <= 20 or i % (len(labels) // 20 + 1) == 0:
            body.append(
                f'<text font-size="10" transform="translate({x + slot * 0.35:.1f},'
                f'{top_pad + plot_height + 12}) rotate(30)">{escape(_short(label))}</text>'
            )
    body += _legend([name for name, _ in series], height - 8)
    description = _describe(labels, series)
    return _frame(title, description, height, body)


def lines(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> Markup:
    """One line per series over ``labels`` (weeks), with a legend."""
    height, left, bottom, top_pad = 300, 60, 70, 30
    plot_height = height - bottom - top_pad
    top = max((max(values, default=0) for _, values in series), default=0) or 1
    step = (WIDTH - left - 20) / max(len(labels) - 1, 1)
    body = _axis(left, top_pad, plot_height, top)
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
                    f"<title>{escape(label)}, {escape(name)}: {value}</title></circle>"
                )
    for i, label in enumerate(labels):
        if len(labels) <= 12 or i % (len(labels) // 12 + 1) == 0:
            body.append(
                _text(left + i * step, top_pad + plot_height + 16, label, anchor="middle", size=10)
            )
    body += _legend([name for name, _ in series], height - 8)
    return _frame(title, _describe(labels, series), height, body)


def _axis(left: float, top_pad: float, plot_height: float, top: int) -> list[str]:
    parts = [
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_height}" '
        'stroke="#555"/>',
        f'<line x1="{left}" y1="{top_pad + plot_height}" x2="{WIDTH - 10}" '
        f'y2="{top_pad + plot_height}" stroke="#555"/>',
    ]
    for fraction in (0, 0.5, 1):
        y = top_pad + plot_height * (1 - fraction)
        parts.append(_text(left - 6, y + 4, f"{round(top * fraction)}", anchor="end", size=10))
    return parts


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _describe(labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """The data in words, for screen readers (the last few points when there are many)."""
    shown = list(range(len(labels)))[-12:]
    parts = [
        f"{labels[i]}: " + ", ".join(f"{name} {values[i]}" for name, values in series)
        for i in shown
    ]
    return "; ".join(parts)
