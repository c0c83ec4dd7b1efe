"""The pages' server-side SVG charts: axes a person can read."""

from __future__ import annotations

import re

import pytest

from api.pages.charts import (
    HIST_FONT,
    HIST_WIDTH,
    NO_TYPE_COLOUR,
    PALETTE,
    Bar,
    Segment,
    Series,
    amount,
    bar_chart,
    line_chart,
    packaging_colours,
    progress_bar,
    stacked_bars,
)


def axis_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]*)</text>', svg)


def histogram(labels: list[str], values: list[int], title: str = "h", colour: str = "#000") -> str:
    return bar_chart(title, labels, values, x_title="Trips", y_title="Items", colour=colour)


def test_a_histogram_of_few_items_has_whole_distinct_gridlines() -> None:
    assert axis_labels(histogram(["0", "1", "2"], [1, 1, 1])) == ["0", "1"]
    assert axis_labels(histogram(["0", "1"], [7, 3])) == ["0", "2", "4", "6", "8"]
    assert axis_labels(histogram(["0"], [20_000])) == [
        "0", "5,000", "10,000", "15,000", "20,000"
    ]  # fmt: skip


def test_labels_are_escaped() -> None:
    svg = histogram(["<script>"], [1], title="<b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_histogram_names_its_axes_and_is_drawn_small_enough_to_read() -> None:
    """Issue 22.12: a histogram shares a row of the reuse page with others (a column of
    20rem = 320 px or more); drawn 720 units wide its 11-unit labels read at about 5 px
    there. In HIST_WIDTH units its text must read at 10 px or more in such a column."""
    svg = histogram(["0", "1", "2"], [4, 2, 1], colour="#D55E00")
    assert re.findall(r'<text class="axis-title"[^>]*>([^<]*)</text>', svg) == ["Items", "Trips"]
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))  # type: ignore[union-attr]
    font = float(re.search(r'font-size="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert (width, font) == (HIST_WIDTH, HIST_FONT)
    assert font * 320 / width >= 10
    assert re.findall(r'<rect [^>]*fill="([^"]+)"', svg) == ["#D55E00"] * 3


def test_a_packaging_type_has_one_colour_whichever_types_a_page_shows() -> None:
    """The colour comes from the type's place in the whole registry, never from its place
    among the series of one chart: the dashboard (all types) and a brand's portal (some)
    agree, and the registry's first len(PALETTE) types all differ."""
    registry = ["pet-1.5l", "can-0.33l", "pet-0.5l", "crate-24", "cup-0.4l", "glass-0.5l"]
    colours = packaging_colours(registry)
    assert len(set(colours.values())) == len(registry)
    assert packaging_colours(reversed(registry)) == colours  # the registry's order is no input

    def series_colours(svg: str) -> dict[str, str]:
        return dict(
            re.findall(r'<g class="series" data-series="([^"]+)"><path [^>]*stroke="([^"]+)"', svg)
        )

    def chart(shown: list[str]) -> str:
        series = [Series(t, [0.5, 0.6], colours[t]) for t in sorted(shown)]
        return line_chart("r", ["a", "b"], series)

    everything = series_colours(chart(registry))
    one_brand = series_colours(chart(["pet-0.5l", "crate-24"]))
    assert one_brand == {t: everything[t] for t in ("pet-0.5l", "crate-24")}
    assert everything["can-0.33l"] == PALETTE[0]  # first by id
    assert Series("(unregistered)", []).colour == NO_TYPE_COLOUR not in PALETTE


def test_return_rate_gridlines_are_round_percentages() -> None:
    def labels(top: float) -> list[str]:
        return axis_labels(line_chart("r", ["a", "b"], [Series("s", [0.5, top])]))

    assert labels(0.8) == ["0%", "25%", "50%", "75%", "100%"]
    assert labels(5.33) == ["0%", "200%", "400%", "600%"]
    assert labels(1.3) == ["0%", "50%", "100%", "150%"]


def bar_widths(svg: str) -> list[float]:
    """The widths of the filled segments, in drawing order (the outlines have no fill)."""
    return [float(w) for w in re.findall(r'<rect x="[^"]+" y="[^"]+" width="([^"]+)" '
                                         r'height="\d+" fill="#', svg)]  # fmt: skip


def test_stacked_bars_share_one_scale_and_stack_in_order() -> None:
    svg = stacked_bars(
        "PET: material flow",
        [Bar("Placed", [Segment("placed", 4.0, "#000")]),
         Bar("Sorted", [Segment("recycling", 2.0, "#111"), Segment("residual", 1.0, "#222"),
                        Segment("unmapped", 0.0, "#333")])],
        legend=[("recycling 2.00 kg", "#111")],
        funnel=True,
    )  # fmt: skip
    placed, recycling, residual = bar_widths(svg)  # an empty segment draws nothing
    assert recycling == 2 * residual and placed == pytest.approx(recycling + 2 * residual, abs=0.2)
    assert svg.count("<polygon") == 1  # one band between the two bars
    assert 'aria-label="PET: material flow"' in svg and ">recycling 2.00 kg</text>" in svg
    assert ">4.00 kg</text>" in svg and ">3.00 kg</text>" in svg


def test_stacked_bars_of_nothing_draw_no_division_by_zero() -> None:
    svg = stacked_bars("empty", [Bar("Placed", [Segment("placed", 0.0, "#000")])], funnel=True)
    assert bar_widths(svg) == [] and ">0.000 kg</text>" in svg


def test_amounts_keep_about_three_significant_digits() -> None:
    assert [amount(v, "kg") for v in (0.06, 2.64, 12.345, 1234.5)] == [
        "0.060 kg", "2.64 kg", "12.3 kg", "1,234 kg"
    ]  # fmt: skip


def test_a_progress_bar_says_its_numbers_in_words() -> None:
    svg = progress_bar("Recycling", 0.367, 0.55)
    assert 'aria-label="Recycling: 36.7 % against a target of 55.0 %"' in svg
    filled = re.findall(r'<rect width="([\d.]+)" height="18" fill="(#[0-9A-Fa-f]+)"', svg)[1]
    assert float(filled[0]) == pytest.approx(160 * 0.367 / 0.55, abs=0.1)
    beyond = progress_bar("Fibre", 0.073, 0.05)  # past the goal: the bar is full, the goal marked
    assert re.findall(r'<rect width="([\d.]+)" height="18"', beyond)[1] == "160.0"
    assert 'x1="109.6"' in beyond  # 5 % of a scale up to 7.3 %
    assert "no data against a target of 90.0 %" in progress_bar("Collection", None, 0.9)


def test_every_series_of_a_line_chart_has_its_legend_entry_inside_the_chart() -> None:
    """Seven packaging types (the demo's, and "(unregistered)") once put the seventh's
    legend entry past the right edge: none may start in the last 100 units of the width,
    and the rows below the plot make the chart taller."""
    names = [f"type-{n}" for n in range(7)]
    svg = line_chart("r", ["a", "b"], [Series(n, [0.5, 0.6], PALETTE[0]) for n in names])
    width, height = (float(v) for v in re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())  # type: ignore[union-attr]
    places = re.findall(
        r'<g class="legend" data-series="([^"]+)" transform="translate\(([\d.]+),([\d.]+)\)"', svg
    )
    assert [name for name, _, _ in places] == names
    assert all(float(x) <= width - 100 and float(y) <= height for _, x, y in places)
    assert height > 260  # a second row
