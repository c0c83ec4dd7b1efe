"""Charts drawn on the server as SVG: no script, no CDN, readable offline and by screen
readers (each chart has a title and its numbers are in a table beside it)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

# Colour-blind-safe palette (Okabe-Ito), one per series.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
# The colour of a series that is no registered packaging type ("(unregistered)"): a grey
# no packaging type has.
NO_TYPE_COLOUR = "#7a7a7a"
# The line chart spans the page's width: at 720 units it is drawn at about 1:1.5 on a
# desktop, so its 11-unit text reads at 12-17 px.
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 40
# The line chart's legend: an entry per series, as many to a row as fit the width, rows
# added below (seven entries in one row ran past the right edge, the last one unseen).
LINE_LEGEND_W, LINE_LEGEND_ROW_H = 130, 16
# A histogram shares a row with others (a grid column of at least 20rem = 320 px): drawn
# in 360 units, its 12-unit text stays at 10.7 px or more in a column that narrow (at
# 720 units, as before, it read at about 5 px).
HIST_WIDTH, HIST_HEIGHT = 360, 240
HIST_LEFT, HIST_RIGHT, HIST_TOP, HIST_BOTTOM = 64, 8, 10, 46
HIST_FONT = 12


def packaging_colours(type_ids: Iterable[str]) -> dict[str, str]:
    """A colour per packaging type of the registry: its place among all registered types,
    by id, in PALETTE. The dashboard and the portal show different sets of types, and
    colour them from the same registry, so a type has one colour on every page; no two
    share one while there are at most len(PALETTE) types. (A hash of the id alone would
    need no registry, but the demo's six types would share colours among seven.)"""
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(sorted(set(type_ids)))}


@dataclass(frozen=True)
class Series:
    name: str
    points: list[float | None]  # one per x label; None where there is no value
    colour: str = NO_TYPE_COLOUR


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, y_title: str = ""
) -> str:
    """Lines over shared x labels, y from 0 to the larger of 1 and the highest value
    (return rates above 1 happen when earlier sales come back); each series in its own
    colour, `y_title` along the y axis."""
    values = [v for s in series for v in s.points if v is not None]
    grid = _grid(max([1.0, *values]), whole=False)
    top = grid[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1)

    def x(i: int) -> float:
        return LEFT + i * step

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    per_row = max(1, (WIDTH - LEFT - RIGHT) // LINE_LEGEND_W)
    legend_rows = max(1, -(-len(series) // per_row))
    parts = [_open(title, height=HEIGHT + (legend_rows - 1) * LINE_LEGEND_ROW_H)]
    if y_title:
        parts.append(_y_title(y_title, TOP + plot_h / 2))
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
        colour = s.colour
        path = " ".join(
            f"{'M' if i == 0 or s.points[i - 1] is None else 'L'}{x(i):.1f},{y(v):.1f}"
            for i, v in enumerate(s.points)
            if v is not None
        )
        parts.append(
            f'<g class="series" data-series="{escape(s.name)}">'
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        # A dot per value: a lone bucket (or one between gaps) has no line to show it.
        parts.extend(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(s.name)} {escape(labels[i])}: {v:.1%}</title></circle>"
            for i, v in enumerate(s.points)
            if v is not None
        )
        parts.append(
            f'</g><g class="legend" data-series="{escape(s.name)}" '
            f'transform="translate({LEFT + LINE_LEGEND_W * (n % per_row)},'
            f'{HEIGHT - 8 + LINE_LEGEND_ROW_H * (n // per_row)})"><rect width="10" '
            f'height="10" y="-9" fill="{colour}"/><text x="14">{escape(s.name)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[int],
    *,
    x_title: str,
    y_title: str,
    colour: str = PALETTE[0],
) -> str:
    """Vertical bars, one per label (e.g. items by number of trips), with the axes'
    titles; sized to share a row with others (HIST_WIDTH)."""
    grid = _grid(max([1, *values]), whole=True)
    top = grid[-1]
    left, right, top_m, bottom = HIST_LEFT, HIST_RIGHT, HIST_TOP, HIST_BOTTOM
    plot_w, plot_h = HIST_WIDTH - left - right, HIST_HEIGHT - top_m - bottom
    slot = plot_w / max(1, len(labels))
    parts = [_open(title, HIST_WIDTH, HIST_HEIGHT, font_size=HIST_FONT)]
    parts.append(_y_title(y_title, top_m + plot_h / 2))
    parts.append(
        f'<text class="axis-title" x="{left + plot_w / 2:.1f}" y="{HIST_HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_title)}</text>'
    )
    for v in grid:
        y = top_m + plot_h * (1 - v / top)
        parts.append(
            f'<line x1="{left}" x2="{HIST_WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:,.0f}</text>'
        )
    for i, v in enumerate(values):
        h = plot_h * v / top
        parts.append(
            f'<rect x="{left + i * slot + slot * 0.1:.1f}" y="{top_m + plot_h - h:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{escape(labels[i])}: {v:,}</title></rect>"
        )
    for i in _tick_indexes(len(labels)):
        parts.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top_m + plot_h + 17}" '
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


def _open(title: str, width: int = WIDTH, height: int = HEIGHT, font_size: int = 11) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart" font-size="{font_size}" '
        f'font-family="sans-serif"><title>{escape(title)}</title>'
    )


def _y_title(text: str, middle: float) -> str:
    """An axis title, turned to run up the left edge, centred on the plot's `middle`."""
    return (
        f'<text class="axis-title" transform="translate(13,{middle:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(text)}</text>'
    )


def _tick_indexes(n: int, most: int = 8) -> range:
    """At most `most` evenly spread label positions out of n."""
    return range(0, n, max(1, -(-n // most)))


# -- horizontal stacked bars: material flows and content ---------------------------------

# Flow and content charts are narrower than the line chart: two fit side by side on a
# desktop and their text stays legible when the browser scales them down.
BARS_WIDTH = 480
BAR_LABEL_W = 118  # the stage or material name, right-aligned left of its bar
BAR_VALUE_W = 92  # the bar's total, right-aligned at the right edge
BAR_H, BAR_GAP = 24, 22  # a bar's height, and the space between bars (the funnel's band)
LEGEND_ROW_H, LEGEND_COLUMNS = 18, 2
PROGRESS_W, PROGRESS_H = 160, 18  # a target's progress bar, in a table cell


@dataclass(frozen=True)
class Segment:
    name: str
    value: float
    colour: str


@dataclass(frozen=True)
class Bar:
    label: str
    segments: list[Segment]

    @property
    def total(self) -> float:
        return sum(s.value for s in self.segments)


def stacked_bars(
    title: str,
    bars: Sequence[Bar],
    *,
    legend: Sequence[tuple[str, str]] = (),
    funnel: bool = False,
    unit: str = "kg",
) -> str:
    """Horizontal bars, each a stack of segments, on one scale (the longest bar fills the
    width); the total in `unit` at the right. `funnel` shades the band from each bar's
    end to the next one's, so the chart reads as a flow from stage to stage. `legend` is
    (text, colour) pairs, drawn below the bars."""
    top_value = max([b.total for b in bars] + [0.0])
    x0 = BAR_LABEL_W + 6
    span = BARS_WIDTH - x0 - BAR_VALUE_W - 6
    legend_rows = -(-len(legend) // LEGEND_COLUMNS)
    bars_h = len(bars) * BAR_H + max(0, len(bars) - 1) * BAR_GAP
    height = 4 + bars_h + (10 + legend_rows * LEGEND_ROW_H if legend else 0) + 4

    def width(value: float) -> float:
        return span * value / top_value if top_value > 0 else 0.0

    parts = [_open(title, BARS_WIDTH, height, font_size=12)]
    for i, bar in enumerate(bars):
        y = 4 + i * (BAR_H + BAR_GAP)
        if funnel and i + 1 < len(bars):
            here, after = width(bar.total), width(bars[i + 1].total)
            parts.append(
                f'<polygon points="{x0},{y + BAR_H} {x0 + here:.1f},{y + BAR_H} '
                f'{x0 + after:.1f},{y + BAR_H + BAR_GAP} {x0},{y + BAR_H + BAR_GAP}" '
                'fill="#e3e7ec"/>'
            )
        parts.append(
            f'<rect x="{x0}" y="{y}" width="{span}" height="{BAR_H}" fill="none" stroke="#d9dce0"/>'
        )
        left = float(x0)
        for segment in bar.segments:
            w = width(segment.value)
            if w <= 0:
                continue
            parts.append(
                f'<rect x="{left:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                f'fill="{segment.colour}"><title>{escape(bar.label)}, {escape(segment.name)}: '
                f"{amount(segment.value, unit)}</title></rect>"
            )
            left += w
        middle = y + BAR_H / 2 + 4
        parts.append(
            f'<text x="{BAR_LABEL_W}" y="{middle:.1f}" text-anchor="end">'
            f"{escape(bar.label)}</text>"
            f'<text x="{BARS_WIDTH - 2}" y="{middle:.1f}" text-anchor="end">'
            f"{amount(bar.total, unit)}</text>"
        )
    legend_top = 4 + bars_h + 10
    column_w = (BARS_WIDTH - x0) / LEGEND_COLUMNS
    for n, (text, colour) in enumerate(legend):
        row, column = divmod(n, LEGEND_COLUMNS)
        parts.append(
            f'<g transform="translate({x0 + column * column_w:.1f},'
            f'{legend_top + row * LEGEND_ROW_H})"><rect width="10" height="10" y="2" '
            f'fill="{colour}"/><text x="14" y="11">{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def amount(value: float, unit: str) -> str:
    """A total as a person reads it: fewer decimals the larger it is (the tables beside
    the charts give every figure to the gram)."""
    decimals = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3
    return f"{value:,.{decimals}f} {unit}"


def progress_bar(label: str, latest: float | None, goal: float) -> str:
    """A target's progress: the latest value as a filled bar on a scale that holds both it
    and the goal, the goal as a marked line. Colour only repeats what the text beside it
    says."""
    w, h = PROGRESS_W, PROGRESS_H
    scale = max(goal, latest or 0.0) or 1.0
    filled = w * (latest or 0.0) / scale
    mark = w * goal / scale
    reached = latest is not None and latest >= goal
    words = "no data" if latest is None else f"{100 * latest:.1f} %"
    text = f"{label}: {words} against a target of {100 * goal:.1f} %"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
        f'height="{h}" role="img" aria-label="{escape(text)}" class="progress">'
        f"<title>{escape(text)}</title>"
        f'<rect width="{w}" height="{h}" fill="#eceff3"/>'
        f'<rect width="{filled:.1f}" height="{h}" fill="{PALETTE[2] if reached else PALETTE[0]}"/>'
        f'<line x1="{mark:.1f}" x2="{mark:.1f}" y1="0" y2="{h}" stroke="#1d1d1f" '
        'stroke-width="2" stroke-dasharray="3 2"/></svg>'
    )
