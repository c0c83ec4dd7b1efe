"""Material flows per material and bucket, and the circularity targets measured on them
(docs/materials.md: every formula is defined there, and computed here only)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from api.registry.service import registered_targets
from api.stats.return_rates import Bucket, hours_and_quarters, rollup_days, whole_days_around
from api.stats.time_limit import SETTING, SlowWindow, time_limited
from api.time_window import Window
from schemas.circularity import Metric
from schemas.named_queries import load_queries
from schemas.rollups import rollup_zone

# The kg fields of a row, each the Σ grams of `<field without _kg>_g` in material_flows.
KG_FIELDS = (
    "placed_kg", "collected_kg", "sorted_kg", "sorted_reuse_kg", "sorted_recycling_kg",
    "sorted_energy_recovery_kg", "sorted_residual_kg", "sorted_unmapped_kg",
    "recycled_content_kg", "renewable_content_kg", "fibre_kg",
)  # fmt: skip
# Every rate: (numerator kg fields, summed; denominator kg field).
RATES: dict[Metric, tuple[tuple[str, ...], str]] = {
    Metric.COLLECTION_RATE: (("collected_kg",), "placed_kg"),
    Metric.MATERIAL_RECYCLING_RATE: (("sorted_recycling_kg",), "placed_kg"),
    Metric.REUSE_SHARE: (("sorted_reuse_kg",), "sorted_kg"),
    Metric.RECYCLED_CONTENT_SHARE: (("recycled_content_kg",), "placed_kg"),
    Metric.RENEWABLE_CONTENT_SHARE: (("renewable_content_kg",), "placed_kg"),
    Metric.RECYCLED_OR_RENEWABLE_SHARE: (
        ("recycled_content_kg", "renewable_content_kg"),
        "placed_kg",
    ),
    Metric.FIBRE_SHARE: (("fibre_kg",), "placed_kg"),
}
# The rates every row carries (recycled_or_renewable_share only in targets: its parts are there).
ROW_RATES = tuple(m for m in RATES if m is not Metric.RECYCLED_OR_RENEWABLE_SHARE)
# What a brand key sees: the placed-on-market side of its own products.
PLACED_SIDE = frozenset(
    {"placed_kg", "recycled_content_kg", "renewable_content_kg", "fibre_kg"}
    | {Metric.RECYCLED_CONTENT_SHARE, Metric.RENEWABLE_CONTENT_SHARE, Metric.FIBRE_SHARE}
)


def _grams(kg_field: str) -> str:
    """The grams column of material_flows that `kg_field` is made of."""
    return kg_field.removesuffix("_kg") + "_g"


# Each flow query answers a row's fields: kg rounded to the gram (half up), the rates of
# the unrounded grams (RATES, written here once), unweighed_qty.
_ROW = """SELECT bucket_start, material, {kg}, {rates}, unweighed_qty FROM (
{flows}
) f
ORDER BY bucket_start, material COLLATE "C" NULLS LAST"""
_QUERIES = load_queries("api.stats", "materials.sql")
_FLOWS = {
    name: _ROW.format(
        kg=", ".join(f"round({_grams(f)} / 1000, 3)::float8 AS {f}" for f in KG_FIELDS),
        rates=", ".join(
            f"(({' + '.join(_grams(n) for n in RATES[m][0])})"
            f" / nullif({_grams(RATES[m][1])}, 0))::float8 AS {m.value}"
            for m in ROW_RATES
        ),
        flows=_QUERIES["material_flows"].replace("{window}", _QUERIES[name]),
    )
    for name in ("material_window_daily", "material_window_hourly")
}
GROUPING_WORK_MEM = "64MB"
MONTHS_OF_TREND = 12
DAYS_PER_YEAR = 365.25  # of a projection's horizon


def rate(row: Mapping[str, Any], metric: Metric) -> float | None:
    """`metric` of a row (or of summed rows): Σ numerators / denominator, None when the
    denominator is 0."""
    numerators, denominator = RATES[metric]
    below = row[denominator]
    if not below:
        return None
    return float(sum(row[n] for n in numerators) / below)


def material_rows(
    conn: psycopg.Connection[Any],
    window: Window,
    bucket: Bucket,
    *,
    brand: str | None,
    packaging_type: str | None,
    placed_only: bool,
    timeout_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of `GET /v1/stats/materials`: per bucket and material (None: unregistered
    GTINs), the kg of each flow, the rates with their parts and `unweighed_qty`. With
    `placed_only` (brand keys) only sold events count and the other fields are None.
    Whole local days of the rollup zone read the day rollup, with no time limit; any other
    window the hourly one, and the quarter hours of the hours a bound or a bucket's start
    cuts (hours_and_quarters), in statements that may run `timeout_ms` each (None or 0: no
    limit), else SlowWindow (422)."""
    params: dict[str, Any] = {
        "unit": bucket.value,
        "from": window.start,
        "to": window.end,
        "tz": window.tz.key,
        "brand": brand,
        "packaging_type": packaging_type,
        "placed_only": placed_only,
    }
    cursor = conn.cursor(row_factory=dict_row)
    days = rollup_days(conn, window)
    # Never prepared: a generic plan, which PostgreSQL picks after five runs, cannot prune
    # by the window or the unit, and took three times as long for a year by day in UTC.
    if days is not None:
        params |= {"from_day": days[0], "to_day": days[1]}
        rows = cursor.execute(_FLOWS["material_window_daily"], params, prepare=False).fetchall()
    else:
        with time_limited(conn, timeout_ms, lambda: _slow(conn, window, timeout_ms)):
            params |= hours_and_quarters(conn, window, bucket)
            # Hundreds of thousands of rows to group for a year: in memory rather than
            # sorted on disk (a year by day in UTC: 480 → 290 ms at 20 M events). For this
            # transaction only.
            conn.execute("SELECT set_config('work_mem', %s, true)", (GROUPING_WORK_MEM,))
            query = _FLOWS["material_window_hourly"]
            rows = cursor.execute(query, params, prepare=False).fetchall()
    for row in rows:
        row["bucket_start"] = row["bucket_start"].astimezone(window.tz)
        if placed_only:
            for field in (*KG_FIELDS, *ROW_RATES):
                if field not in PLACED_SIDE:
                    row[field] = None
    return rows


def _slow(conn: psycopg.Connection[Any], window: Window, timeout_ms: int | None) -> SlowWindow:
    zone = rollup_zone(conn)
    detail = (
        "material flows of this window add up hourly and 15-minute counts and took longer "
        f"than {timeout_ms} ms (the server's {SETTING}): ask for whole days in {zone} "
        f"(from and to as dates, tz={zone}), read from day totals"
    )
    return SlowWindow(detail, timeout_ms or 0, [whole_days_around(zone, window)])


def targets(conn: psycopg.Connection[Any], today: date | None = None) -> list[dict[str, Any]]:
    """Every circularity target with its latest value (the last 12 whole months in the
    rollup zone, before `today` there), the monthly trend, the slope and whether the
    trajectory reaches it."""
    zone = ZoneInfo(rollup_zone(conn))
    today = today or datetime.now(zone).date()
    first_month = _add_months(today.replace(day=1), -MONTHS_OF_TREND)
    window = Window(
        datetime.combine(first_month, time(), zone).astimezone(UTC),
        datetime.combine(today.replace(day=1), time(), zone).astimezone(UTC),
        zone,
    )
    monthly = material_rows(
        conn, window, Bucket.MONTH, brand=None, packaging_type=None, placed_only=False
    )
    months = [_add_months(first_month, k) for k in range(MONTHS_OF_TREND)]
    answers = []
    for target in registered_targets(conn):
        metric = Metric(target["metric"])
        covered = set(target["materials"]) if target["materials"] is not None else None
        chosen = [r for r in monthly if covered is None or r["material"] in covered]
        trend: list[dict[str, Any]] = []
        values: list[tuple[int, float | None]] = []
        for k, month in enumerate(months):
            parts = _summed(r for r in chosen if r["bucket_start"].date() == month)
            values.append((k, rate(parts, metric)))
            trend.append({"month": month, "value": values[-1][1], **_parts(parts, metric)})
        whole = _summed(chosen)
        latest = rate(whole, metric)
        slope = _slope_per_year(values)
        projected, on_track = _trajectory(
            latest, slope, float(target["value"]), target["year"], window, today
        )
        answers.append(
            {
                **target,
                "value": float(target["value"]),
                "baseline_value": _float(target["baseline_value"]),
                "latest": {
                    "value": latest,
                    "from": window.start.astimezone(zone),
                    "to": window.end.astimezone(zone),
                    **_parts(whole, metric),
                },
                "trend": trend,
                "slope_per_year": slope,
                "projected": projected,
                "on_track": on_track,
            }
        )
    return answers


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _summed(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = dict.fromkeys(KG_FIELDS, 0.0)
    for row in rows:
        for kg_field in KG_FIELDS:
            total[kg_field] += row[kg_field]
    return total


def _parts(summed: Mapping[str, Any], metric: Metric) -> dict[str, float]:
    numerators, denominator = RATES[metric]
    return {
        "numerator_kg": round(sum(summed[n] for n in numerators), 3),
        "denominator_kg": round(summed[denominator], 3),
    }


def _slope_per_year(points: list[tuple[int, float | None]]) -> float | None:
    """Least-squares slope of (month index, value) per year; None with fewer than 2
    months that have a value."""
    known = [(x, y) for x, y in points if y is not None]
    if len(known) < 2:
        return None
    mean_x = sum(x for x, _ in known) / len(known)
    mean_y = sum(y for _, y in known) / len(known)
    spread = sum((x - mean_x) ** 2 for x, _ in known)
    return 12 * sum((x - mean_x) * (y - mean_y) for x, y in known) / spread


def _trajectory(
    latest: float | None,
    slope: float | None,
    goal: float,
    year: int,
    window: Window,
    today: date,
) -> tuple[float | None, bool | None]:
    """The value projected from the middle of the latest window to the end of `year`
    (in the window's zone), and whether it reaches `goal`; a year already over is judged
    on the latest value."""
    if latest is None:
        return None, None
    if today.year > year:
        return latest, latest >= goal
    middle = window.start + (window.end - window.start) / 2
    year_end = datetime(year + 1, 1, 1, tzinfo=window.tz)
    years = (year_end - middle).total_seconds() / (DAYS_PER_YEAR * 86_400)
    projected = latest + (slope or 0.0) * years
    return projected, projected >= goal


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(first.day, calendar.monthrange(year, month + 1)[1]))
