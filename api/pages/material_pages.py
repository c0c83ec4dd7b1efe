"""What the material pages show, built from api.stats.materials' rows and targets: the columns
of their tables and CSVs, the window's totals per material, the flow and content charts
and the targets' progress (docs/materials.md defines every figure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup

from api.pages import charts
from api.stats.materials import KG_FIELDS, RATES, ROW_RATES, rate
from api.stats.return_rates import Bucket


@dataclass(frozen=True)
class Column:
    """A column of a material table: the row's field, its heading, how its values read
    ("kg", "qty" or "rate") and, for a rate, its formula (the heading's tooltip)."""

    field: str
    heading: str
    kind: str
    formula: str = ""


BUCKET_AND_MATERIAL = ["bucket_start", "material"]
# The operator's table: every kg figure, then the rates (the order of GET /v1/stats/materials).
FLOW_COLUMNS = [
    Column("placed_kg", "Placed on market", "kg"),
    Column("collected_kg", "Collected", "kg"),
    Column("sorted_kg", "Sorted", "kg"),
    Column("sorted_reuse_kg", "Sorted: reuse", "kg"),
    Column("sorted_recycling_kg", "Sorted: material recycling", "kg"),
    Column("sorted_energy_recovery_kg", "Sorted: energy recovery", "kg"),
    Column("sorted_residual_kg", "Sorted: residual", "kg"),
    Column("sorted_unmapped_kg", "Sorted: unmapped", "kg"),
    Column("recycled_content_kg", "Recycled content", "kg"),
    Column("renewable_content_kg", "Renewable content", "kg"),
    Column("fibre_kg", "Fibre-based", "kg"),
    Column("unweighed_qty", "Unweighed", "qty"),
    Column("collection_rate", "Collection rate", "rate", "collected / placed on market"),
    Column("material_recycling_rate", "Material recycling rate", "rate",
           "sorted to material recycling / placed on market"),
    Column("reuse_share", "Reuse share", "rate", "sorted to reuse / sorted"),
    Column("recycled_content_share", "Recycled content share", "rate",
           "recycled content / placed on market"),
    Column("renewable_content_share", "Renewable content share", "rate",
           "renewable content / placed on market"),
    Column("fibre_share", "Fibre share", "rate", "fibre-based / placed on market"),
]  # fmt: skip
# A brand's table: the placed-on-market side only (never the scheme's collected and sorted
# figures, which are the operator's data).
PLACED_COLUMNS = [
    next(c for c in FLOW_COLUMNS if c.field == field)
    for field in ("placed_kg", "recycled_content_kg", "recycled_content_share",
                  "renewable_content_kg", "renewable_content_share", "fibre_kg", "fibre_share",
                  "unweighed_qty")
]  # fmt: skip
# The targets' CSV: a target, then its latest value and trajectory flattened.
TARGET_COLUMNS = [
    "id", "name", "metric", "materials", "value", "year", "baseline_value", "baseline_year",
    "source", "latest_value", "latest_from", "latest_to", "numerator_kg", "denominator_kg",
    "slope_per_year", "projected", "on_track",
]  # fmt: skip

# Where sorted packaging went, in the order the flow chart stacks it (Okabe-Ito colours;
# the legend names each with its kg, so no outcome is told by colour alone).
OUTCOMES = [
    ("sorted_reuse_kg", "reuse", "#009E73"),
    ("sorted_recycling_kg", "material recycling", "#0072B2"),
    ("sorted_energy_recovery_kg", "energy recovery", "#E69F00"),
    ("sorted_residual_kg", "residual", "#7a7a7a"),
    ("sorted_unmapped_kg", "unmapped", "#CC79A7"),
]
PLACED_COLOUR, COLLECTED_COLOUR = "#5f6368", "#56B4E9"
RECYCLED_COLOUR, RENEWABLE_COLOUR, OTHER_COLOUR = "#009E73", "#E69F00", "#c4c9cf"
UNREGISTERED = "(unregistered)"
NO_VALUE = "\N{EN DASH}"


def figure(value: float | None, kind: str) -> str:
    """A figure as the tables write it: kg to the gram, quantities whole, rates in per
    cent; an en dash where there is none."""
    if value is None:
        return NO_VALUE
    if kind == "rate":
        return f"{100 * value:.1f} %"
    if kind == "kg":
        return f"{value:,.3f}"
    return f"{value:,}"


def period(bucket_start: datetime, bucket: Bucket) -> str:
    """A bucket as a person names it."""
    if bucket is Bucket.TOTAL:
        return "whole period"
    if bucket is Bucket.MONTH:
        return bucket_start.strftime("%Y-%m")
    if bucket is Bucket.WEEK:
        return f"week of {bucket_start:%Y-%m-%d}"
    return bucket_start.strftime("%Y-%m-%d")


def table(
    rows: Iterable[dict[str, Any]], shown: list[Column], bucket: Bucket
) -> list[dict[str, Any]]:
    """The rows of a material table, each row's figure cells written out here as HTML
    rather than cell by cell in the template: a year by day (2,190 rows of twenty
    figures) takes the page 85 ms so, 310 ms through a Jinja macro per cell."""
    return [
        {
            "bucket_start": r["bucket_start"].isoformat(),
            "period": period(r["bucket_start"], bucket),
            "material": r["material"] or UNREGISTERED,
            # Field names are the columns' own; the figures are numbers or a dash.
            "cells": Markup(
                "".join(
                    f'<td class="num {c.field}">{figure(r[c.field], c.kind)}</td>' for c in shown
                )
            ),
        }
        for r in rows
    ]


def columns(fields: Iterable[Column]) -> list[str]:
    """A CSV's header: the bucket, the material, then the table's fields."""
    return [*BUCKET_AND_MATERIAL, *(c.field for c in fields)]


def csv_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Material rows for a CSV: bucket starts in RFC 3339, as the JSON API writes them."""
    return [{**r, "bucket_start": r["bucket_start"].isoformat()} for r in rows]


def totals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per material over the whole window: the kg summed over its buckets and the rates
    of those sums (docs/materials.md: sum the kg, then divide). A field that is None in
    the rows (a brand's collected and sorted side) stays None."""
    by_material: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        total = by_material.setdefault(
            row["material"],
            {"material": row["material"], "unweighed_qty": 0,
             **{f: None if row[f] is None else 0.0 for f in KG_FIELDS}},
        )  # fmt: skip
        total["unweighed_qty"] += row["unweighed_qty"]
        for field in KG_FIELDS:
            if row[field] is not None:
                total[field] = round(total[field] + row[field], 3)
    for total in by_material.values():
        for metric in ROW_RATES:
            numerators, denominator = RATES[metric]
            known = all(total[f] is not None for f in (*numerators, denominator))
            total[metric.value] = rate(total, metric) if known else None
    return sorted(by_material.values(), key=lambda t: (t["material"] is None, t["material"] or ""))


def flow_chart(total: dict[str, Any]) -> str:
    """One material's flow over the window: placed on market → collected → sorted, the
    sorted bar stacked by outcome."""
    material = total["material"] or UNREGISTERED
    sorted_segments = [
        charts.Segment(words, total[field], colour) for field, words, colour in OUTCOMES
    ]
    bars = [
        charts.Bar("Placed on market", [
            charts.Segment("placed on market", total["placed_kg"], PLACED_COLOUR)]),
        charts.Bar("Collected", [
            charts.Segment("collected", total["collected_kg"], COLLECTED_COLOUR)]),
        charts.Bar("Sorted", sorted_segments),
    ]  # fmt: skip
    legend = [(f"{s.name} {charts.amount(s.value, 'kg')}", s.colour) for s in sorted_segments]
    return charts.stacked_bars(f"{material}: material flow", bars, legend=legend, funnel=True)


def content_chart(material_totals: list[dict[str, Any]]) -> str:
    """What a brand placed on the market, per material: its recycled and renewable content
    and the rest."""
    bars = [
        charts.Bar(t["material"] or UNREGISTERED, [
            charts.Segment("recycled content", t["recycled_content_kg"], RECYCLED_COLOUR),
            charts.Segment("renewable content", t["renewable_content_kg"], RENEWABLE_COLOUR),
            charts.Segment("other", max(0.0, t["placed_kg"] - t["recycled_content_kg"]
                                        - t["renewable_content_kg"]), OTHER_COLOUR),
        ])
        for t in material_totals
    ]  # fmt: skip
    legend = [("recycled content", RECYCLED_COLOUR), ("renewable content", RENEWABLE_COLOUR),
              ("other (virgin or undeclared)", OTHER_COLOUR)]  # fmt: skip
    return charts.stacked_bars("Placed on the market per material, by content", bars,
                               legend=legend)  # fmt: skip


def target_rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets as the page and its CSV show them: the latest value and trajectory
    flattened, the status in words, and a progress bar of latest against target."""
    rows = []
    for t in found:
        latest = t["latest"]
        on_track = t["on_track"]
        rows.append({
            **{k: t[k] for k in ("id", "name", "metric", "value", "year", "baseline_value",
                                 "baseline_year", "source", "slope_per_year", "projected",
                                 "on_track")},
            "materials": " ".join(t["materials"]) if t["materials"] is not None else "all",
            "material_list": t["materials"],
            "trend_months": sum(1 for point in t["trend"] if point["value"] is not None),
            # The latest window ends on the first of this month: a year before it is over,
            # and the target is judged on the latest value alone.
            "year_over": latest["to"].year > t["year"],
            "latest_value": latest["value"],
            "latest_from": latest["from"].date().isoformat(),
            "latest_to": latest["to"].date().isoformat(),
            "latest_last_day": (latest["to"] - timedelta(days=1)).date().isoformat(),
            "numerator_kg": latest["numerator_kg"],
            "denominator_kg": latest["denominator_kg"],
            "status": "no data" if on_track is None else "on track" if on_track
                      else "not on track",
            "progress": charts.progress_bar(t["name"], latest["value"], t["value"]),
        })  # fmt: skip
    return rows
