"""The pages' server-side SVG charts: axes a person can read."""

from __future__ import annotations

import re

from api.pages.charts import Series, bar_chart, line_chart


def axis_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]*)</text>', svg)


def test_a_histogram_of_few_items_has_whole_distinct_gridlines() -> None:
    assert axis_labels(bar_chart("h", ["0", "1", "2"], [1, 1, 1])) == ["0", "1"]
    assert axis_labels(bar_chart("h", ["0", "1"], [7, 3])) == ["0", "2", "4", "6", "8"]
    assert axis_labels(bar_chart("h", ["0"], [20_000])) == [
        "0", "5,000", "10,000", "15,000", "20,000"
    ]  # fmt: skip


def test_labels_are_escaped() -> None:
    svg = bar_chart("<b>", ["<script>"], [1])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_return_rate_gridlines_are_round_percentages() -> None:
    def labels(top: float) -> list[str]:
        return axis_labels(line_chart("r", ["a", "b"], [Series("s", [0.5, top])]))

    assert labels(0.8) == ["0%", "25%", "50%", "75%", "100%"]
    assert labels(5.33) == ["0%", "200%", "400%", "600%"]
    assert labels(1.3) == ["0%", "50%", "100%", "150%"]
