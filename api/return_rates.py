"""Return rates per packaging type and time bucket (SPEC §7): sold, returned, rejected, kg."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.stats_queries import QUERIES
from api.time_window import Window
from schemas.rollups import rollup_zone


class Bucket(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting Monday
    MONTH = "month"
    TOTAL = "total"


# The response is built as JSON by PostgreSQL, in one value: a year of daily rows per
# packaging type is thousands of rows, which Python would spend longer converting and
# validating than the database spends finding them. Timestamps print in the session's
# TimeZone, set to the requested zone for the transaction.
_AS_JSON = """
SELECT json_build_object('rows', coalesce(json_agg(json_build_object(
           'bucket_start', r.bucket_start,
           'packaging_type', r.packaging_type,
           'sold', r.sold,
           'returned', r.returned,
           'rejected', r.rejected,
           'return_rate', r.returned::float8 / nullif(r.sold, 0),
           'sold_kg', round(r.sold * r.weight_g / 1000, 3)::float8,
           'returned_kg', round(r.returned * r.weight_g / 1000, 3)::float8)
       ORDER BY r.bucket_start, r.packaging_type NULLS LAST), '[]'))::text
FROM (
{query}
) r
"""
_JSON_QUERIES = {
    name: _AS_JSON.format(query=QUERIES[name])
    for name in ("return_rates", "return_rates_daily", "return_rates_hourly")
}
HOUR = timedelta(hours=1)


def local_midnight(instant: datetime, zone: ZoneInfo) -> date | None:
    local = instant.astimezone(zone)
    return local.date() if local.time() == time() else None


def rollup_days(conn: psycopg.Connection[Any], window: Window) -> tuple[date, date] | None:
    """The first and the end day of `window` when it is made of whole local days in the
    day rollups' zone (so the day rollups can answer it), else None."""
    from_day = local_midnight(window.start, window.tz)
    to_day = local_midnight(window.end, window.tz)
    if from_day is None or to_day is None or window.tz.key != rollup_zone(conn):
        return None
    return from_day, to_day


def on_whole_hours(window: Window) -> bool:
    """Whether every local day of `window` is made of whole UTC hours: bounds on the hour
    and the zone's offset a whole number of hours throughout (checked once a day: offsets
    change at most a few times a year)."""
    if window.start.timestamp() % 3600 or window.end.timestamp() % 3600:
        return False
    instant = window.start
    while instant <= window.end:
        offset = instant.astimezone(window.tz).utcoffset()
        if offset is None or offset % HOUR:
            return False
        instant += timedelta(days=1)
    offset = window.end.astimezone(window.tz).utcoffset()
    return offset is not None and not offset % HOUR


def return_rates_json(
    conn: psycopg.Connection[Any],
    window: Window,
    bucket: Bucket,
    *,
    packaging_type: str | None,
    brand: str | None,
    site_id: str | None,
) -> str:
    """`{"rows": [{bucket_start, packaging_type, sold, returned, rejected, return_rate,
    sold_kg, returned_kg}]}` as JSON text; buckets without any event are left out. Whole
    local days in the zone of the day rollups (LOOPTRACK_TIMEZONE at migration) are read
    from them; whole hours of whole-hour zones, without a site filter, from the hourly
    rollup; anything else from the 15-minute rollup. Sets the transaction's TimeZone."""
    params: dict[str, Any] = {
        "unit": bucket.value,
        "from": window.start,
        "to": window.end,
        "tz": window.tz.key,
        "packaging_type": packaging_type,
        "brand": brand,
        "site_id": site_id,
    }
    days = rollup_days(conn, window)
    if days is not None:
        query = _JSON_QUERIES["return_rates_daily"]
        params |= {"from_day": days[0], "to_day": days[1]}
    elif site_id is None and on_whole_hours(window):
        query = _JSON_QUERIES["return_rates_hourly"]
    else:
        query = _JSON_QUERIES["return_rates"]
    conn.execute("SELECT set_config('TimeZone', %s, true)", (window.tz.key,))
    row = conn.execute(query, params).fetchone()
    assert row is not None  # an aggregate always returns one row
    return str(row[0])
