"""Return rates per packaging type and time bucket (SPEC §7): sold, returned, rejected, kg."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.stats_queries import QUERIES
from api.time_window import Window


class Bucket(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting Monday
    MONTH = "month"
    TOTAL = "total"


def _kg(count: int, weight_g: Decimal | None) -> float | None:
    return None if weight_g is None else round(float(count * weight_g) / 1000, 3)


def _local_midnight(instant: datetime, zone: ZoneInfo) -> date | None:
    local = instant.astimezone(zone)
    return local.date() if local.time() == time() else None


def return_rates(
    conn: psycopg.Connection[Any],
    window: Window,
    bucket: Bucket,
    *,
    packaging_type: str | None,
    brand: str | None,
    site_id: str | None,
    rollup_zone: str,
) -> list[dict[str, Any]]:
    """Rows of {bucket_start, packaging_type, sold, returned, rejected, return_rate,
    sold_kg, returned_kg}; buckets without any event are left out. Whole local days in
    `rollup_zone` (LOOPTRACK_TIMEZONE) are read from the day rollups, anything else from
    the 15-minute rollup."""
    params: dict[str, Any] = {
        "unit": bucket.value,
        "from": window.start,
        "to": window.end,
        "tz": window.tz.key,
        "packaging_type": packaging_type,
        "brand": brand,
        "site_id": site_id,
    }
    from_day = _local_midnight(window.start, window.tz)
    to_day = _local_midnight(window.end, window.tz)
    if window.tz.key == rollup_zone and from_day is not None and to_day is not None:
        query = QUERIES["return_rates_daily"]
        params |= {"from_day": from_day, "to_day": to_day}
    else:
        query = QUERIES["return_rates"]
    rows = conn.execute(query, params).fetchall()
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
