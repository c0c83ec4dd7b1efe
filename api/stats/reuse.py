"""Reuse cycles per packaging type (SPEC §7): trips, trip days, losses, target reached."""

from __future__ import annotations

from typing import Any

import psycopg

from schemas.named_queries import load_queries

_QUERIES = load_queries("api.stats", "queries.sql")
# An item whose latest event is `sold`/`filled` older than this is lost (days).
DEFAULT_LOSS_AFTER_DAYS = 180


def reuse(
    conn: psycopg.Connection[Any],
    *,
    packaging_type: str | None,
    brand: str | None,
    loss_after_days: int = DEFAULT_LOSS_AFTER_DAYS,
) -> list[dict[str, Any]]:
    """One row per packaging type with serialised items."""
    # Until the request's transaction ends: the planner prices the median's lookups (a few
    # rows each) by row counts it cannot know, far above jit_above_cost, and compiling
    # took seconds for a statement of milliseconds.
    conn.execute("SET LOCAL jit = off")
    # Never prepared: the generic plan PostgreSQL switches to after five runs, blind to
    # which filters are NULL, took 230 ms where each run's own plan takes 60 (10 M trips).
    rows = conn.execute(
        _QUERIES["reuse"],
        {"packaging_type": packaging_type, "brand": brand, "loss_after_days": loss_after_days},
        prepare=False,
    ).fetchall()
    result = []
    for (
        packaging, items, trips, mean_trips, p50, p90, max_trips, target, reached,
        mean_days, median_days, lost, in_loop, histogram,
    ) in rows:  # fmt: skip
        result.append(
            {
                "packaging_type": packaging,
                "items": items,
                "trips": int(trips),
                "mean_trips": float(mean_trips),
                "p50_trips": p50,
                "p90_trips": p90,
                "max_trips": max_trips,
                "target_trips": target,
                "reached_target": reached,
                "mean_trip_days": None if mean_days is None else float(mean_days),
                "median_trip_days": None if median_days is None else float(median_days),
                "lost": lost,
                "loss_rate": lost / in_loop if in_loop else None,
                "histogram": histogram,
            }
        )
    return result
