"""Charts drawn on the server as SVG: no script, no CDN, readable offline and by screen
readers (each chart has a title and its numbers are in a table beside it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Colour-blind-safe palette (Okabe-Ito), one per series.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40


@dataclass(frozen=True)
class Series:
    name: str
    points: list[float | None]  # one per x label; None where there is no value


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Lines over shared x labels, y from 0 to the larger of 1 and the highest value
    (return rates above 1 happen when earlier sales come back)."""
    values = [v for s in series for v in s.points if v is not None]
    grid = _grid(max([1.0, *values]), whole=False)
    top = grid[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1)

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [_open(title)]
    for v in grid:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0%}</text>'
        )
    for i in _tick_indexes(len(labels)):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(labels[i])}</text>"
        )
    for n, s in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        path = " ".join(
            f"{'M' if i == 0 or s.points[i - 1] is None else 'L'}{x(i):.1f},{y(v):.1f}"
            for i, v in enumerate(s.points)
            if v is not None
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        # A dot per value: a lone bucket (or one between gaps) has no line to show it.
        parts.extend(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(s.name)} {escape(labels[i])}: {v:.1%}</title></circle>"
            for i, v in enumerate(s.points)
            if v is not None
        )
        parts.append(
            f'<g transform="translate({LEFT + 140 * n},{HEIGHT - 8})"><rect width="10" '
            f'height="10" y="-9" fill="{colour}"/><text x="14">{escape(s.name)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int]) -> str:
    """Vertical bars, one per label (e.g. items by number of trips)."""
    grid = _grid(max([1, *values]), whole=True)
    top = grid[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    parts = [_open(title)]
    for v in grid:
        y = TOP + plot_h * (1 - v / top)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:,.0f}</text>'
        )
    for i, v in enumerate(values):
        h = plot_h * v / top
        parts.append(
            f'<rect x="{LEFT + i * slot + slot * 0.1:.1f}" y="{TOP + plot_h - h:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(labels[i])}: {v:,}</title></rect>"
        )
    for i in _tick_indexes(len(labels)):
        parts.append(
            f'<text x="{LEFT + (i + 0.5) * slot:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle">{escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _grid(highest: float, *, whole: bool) -> list[float]:
    """Gridline values from 0 in a round step (1, 2, 2.5 or 5 times a power of ten; whole
    numbers only for counts), at most 4 steps, the last at or above `highest`."""
    for exponent in range(-3, 19):
        for mantissa in (1, 2, 2.5, 5):
            step = mantissa * 10.0**exponent
            if whole and (step < 1 or step % 1):
                continue
            steps = math.ceil(highest / step - 1e-9)
            if steps <= 4:
                return [step * k for k in range(max(1, steps) + 1)]
    return [0.0, highest]


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" class="chart" font-size="11" font-family="sans-serif">'
        f"<title>{escape(title)}</title>"
    )


def _tick_indexes(n: int, most: int = 8) -> range:
    """At most `most` evenly spread label positions out of n."""
    return range(0, n, max(1, -(-n // most)))
