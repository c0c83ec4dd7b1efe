"""Return rates per packaging type and time bucket (SPEC §7): sold, returned, rejected, kg."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

import psycopg

from api.time_window import Window
from schemas.named_queries import load_queries

QUERIES = load_queries("api", "sql/stats.sql")


class Bucket(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting Monday
    MONTH = "month"
    TOTAL = "total"


def _kg(count: int, weight_g: Decimal | None) -> float | None:
    return None if weight_g is None else round(float(count * weight_g) / 1000, 3)


def return_rates(
    conn: psycopg.Connection[Any],
    window: Window,
    bucket: Bucket,
    *,
    packaging_type: str | None,
    brand: str | None,
    site_id: str | None,
) -> list[dict[str, Any]]:
    """Rows of {bucket_start, packaging_type, sold, returned, rejected, return_rate,
    sold_kg, returned_kg}; buckets without any event are left out."""
    rows = conn.execute(
        QUERIES["return_rates"],
        {
            "unit": bucket.value,
            "from": window.start,
            "to": window.end,
            "tz": window.tz.key,
            "packaging_type": packaging_type,
            "brand": brand,
            "site_id": site_id,
        },
    ).fetchall()
    return [
        {
            "bucket_start": bucket_start.astimezone(window.tz),
            "packaging_type": packaging,
            "sold": sold,
            "returned": returned,
            "rejected": rejected,
            "return_rate": returned / sold if sold else None,
            "sold_kg": _kg(sold, weight_g),
            "returned_kg": _kg(returned, weight_g),
        }
        for bucket_start, packaging, sold, returned, rejected, weight_g in rows
    ]
