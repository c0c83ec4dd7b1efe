"""Rejects at return points by reason and packaging type, from the day and month tables
kept in the rollup zone."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from api.time_window import Window
from schemas.named_queries import load_queries
from schemas.rollups import rollup_zone

_QUERIES = load_queries("api.stats", "queries.sql")


def rejects_by_reason(
    conn: psycopg.Connection[Any], window: Window, *, brand: str | None
) -> dict[str, Any]:
    """`rows` (reason, packaging_type or None, rejected: Σ qty) in `window`, most first:
    exact when the window is whole days of the rollup zone; otherwise over the zone's days
    it touches, and `zone` names that zone (else None). `from_day` and `to_day` are the
    first and last day counted."""
    zone = ZoneInfo(rollup_zone(conn))
    start, end = (window.start.astimezone(zone), window.end.astimezone(zone))
    from_day = start.date()
    to_day = end.date() if end.time() == time() else end.date() + timedelta(days=1)
    # Whole months inside [from_day, to_day) come from the month table.
    first_month = from_day if from_day.day == 1 else _next_month(from_day)
    end_month = to_day.replace(day=1)
    if first_month >= end_month:
        first_month = end_month = to_day  # no whole month: days only
    params = {"from_day": from_day, "to_day": to_day, "first_month": first_month,
              "end_month": end_month, "brand": brand}  # fmt: skip
    rows = conn.cursor(row_factory=dict_row).execute(_QUERIES["rejects_by_reason"], params)
    exact = zone.key == window.tz.key and start.time() == time() and end.time() == time()
    return {
        "rows": rows.fetchall(),
        "zone": None if exact else zone.key,
        "from_day": start.date(),
        "to_day": to_day - timedelta(days=1),
    }


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
