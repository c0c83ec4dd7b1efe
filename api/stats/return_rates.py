"""Return rates per packaging type and time bucket (SPEC §7): sold, returned, rejected, kg."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.stats.time_limit import SETTING, SlowWindow, time_limited
from api.time_window import MAX_WINDOW, Window
from schemas.named_queries import load_queries
from schemas.rollups import rollup_zone

_QUERIES = load_queries("api.stats", "queries.sql")


class Bucket(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting Monday
    MONTH = "month"
    TOTAL = "total"


# The API's response is built as JSON by PostgreSQL, in one value: a year of daily rows
# per packaging type is thousands of rows, which Python would spend longer converting and
# validating than the database spends finding them. Timestamps print in the session's
# TimeZone, set to the requested zone for the transaction. Each row is a row value turned
# into JSON by its column names: a quarter cheaper than json_build_object per row, and
# without its blanks (a year by day of every packaging type: 3,700 rows, 30 → 24 ms in
# PostgreSQL and 780 → 700 kB at 50 M events).
_ROWS = """
SELECT q.bucket_start, q.packaging_type, q.sold, q.returned, q.rejected,
       q.returned::float8 / nullif(q.sold, 0) AS return_rate,
       round(q.sold * q.weight_g / 1000, 3)::float8 AS sold_kg,
       round(q.returned * q.weight_g / 1000, 3)::float8 AS returned_kg
FROM (
{query}
) q
"""
_AS_JSON = """
SELECT json_build_object('rows', coalesce(json_agg(r ORDER BY r.bucket_start,
                                                   r.packaging_type NULLS LAST), '[]'))::text
FROM ({rows}) r
"""
# The pages' rows: the same, each bucket_start the text the JSON above carries.
_AS_ROWS = """
SELECT to_json(r.bucket_start) #>> '{{}}' AS bucket_start, r.packaging_type, r.sold,
       r.returned, r.rejected, r.return_rate, r.sold_kg, r.returned_kg
FROM ({rows}) r
ORDER BY r.bucket_start, r.packaging_type NULLS LAST
"""
_NAMES = ("return_rates", "return_rates_daily", "return_rates_hourly")
_JSON_QUERIES = {name: _AS_JSON.format(rows=_ROWS.format(query=_QUERIES[name])) for name in _NAMES}
_ROW_QUERIES = {name: _AS_ROWS.format(rows=_ROWS.format(query=_QUERIES[name])) for name in _NAMES}
HOUR = timedelta(hours=1)
QUARTER_HOUR = timedelta(minutes=15)


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


def hours_and_quarters(
    conn: psycopg.Connection[Any], window: Window, bucket: Bucket
) -> dict[str, Any]:
    """The parameters of the hourly queries: `from_hour` (the UTC hour the window starts
    in), `split_hours` (the hours no bucket holds whole: cut by the window's bounds or, in
    a zone with a :30 or :45 offset, by a bucket's start) and `quarters` (their quarter
    hours inside the window, read from the quarter-hour rollups instead). The quarter
    hours grow with the buckets, not with the window's length: a year by month in
    Asia/Kolkata reads 13 hours of them."""
    from_hour = window.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if on_whole_hours(window):
        return {"from_hour": from_hour, "split_hours": [], "quarters": []}
    # PostgreSQL finds the bucket boundaries: with the same zone rules as the query that
    # buckets the counts, whatever the zone data Python has.
    params = {"from": window.start, "to": window.end, "from_hour": from_hour,
              "unit": bucket.value, "tz": window.tz.key}  # fmt: skip
    row = conn.execute(_QUERIES["hours_across_buckets"], params).fetchone()
    assert row is not None  # an aggregate always returns one row
    split_hours: list[datetime] = row[0]
    quarters = [
        quarter
        for hour in split_hours
        for quarter in (hour + k * QUARTER_HOUR for k in range(4))
        if window.start <= quarter < window.end
    ]
    return {"from_hour": from_hour, "split_hours": split_hours, "quarters": quarters}


def whole_days_around(zone: str, window: Window) -> dict[str, Any]:
    """A fast window (SlowWindow.fast_windows): the whole local days of the rollup zone
    `zone` around `window`, which the day rollups answer with any filter."""
    tz = ZoneInfo(zone)
    first = window.start.astimezone(tz).date()
    end = window.end.astimezone(tz)
    last = end.date() if end.time() == time() else end.date() + timedelta(days=1)
    last = min(last, first + MAX_WINDOW)
    return {
        "rollup": "day",
        "tz": zone,
        "bounds": "local-midnight",
        "site_id": True,
        "query": {"from": first.isoformat(), "to": last.isoformat(), "tz": zone},
    }


def whole_hours_around(window: Window) -> dict[str, Any]:
    """A fast window (SlowWindow.fast_windows): the whole UTC hours around `window`, which
    the hourly rollups answer without a site filter in any zone whose UTC offset is whole
    hours (`tz` null); the suggested `query` keeps the request's zone when it is one."""
    start = window.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = window.end.astimezone(UTC)
    if end.timestamp() % HOUR.total_seconds():
        end = end.replace(minute=0, second=0, microsecond=0) + HOUR
    end = min(end, start + MAX_WINDOW)
    zone = window.tz.key if on_whole_hours(Window(start, end, window.tz)) else "UTC"
    return {
        "rollup": "hour",
        "tz": None,
        "bounds": "whole-hour",
        "site_id": False,
        "query": {"from": f"{start:%Y-%m-%dT%H:%M:%SZ}", "to": f"{end:%Y-%m-%dT%H:%M:%SZ}",
                  "tz": zone},
    }  # fmt: skip


def return_rates_json(
    conn: psycopg.Connection[Any],
    window: Window,
    bucket: Bucket,
    *,
    packaging_type: str | None,
    brand: str | None,
    site_id: str | None,
    timeout_ms: int | None = None,
) -> str:
    """`{"rows": [{bucket_start, packaging_type, sold, returned, rejected, return_rate,
    sold_kg, returned_kg}]}` as JSON text; buckets without any event are left out. Whole
    local days in the zone of the day rollups (LOOPTRACK_TIMEZONE at migration) are read
    from them, with no time limit. Without a site filter, any other window reads the
    hourly rollup, and the 15-minute rollup for the hours a bound or a bucket's start cuts
    (hours_and_quarters); with one, the 15-minute rollup. Those statements may run
    `timeout_ms` each (None or 0: no limit), else SlowWindow (422). Sets the
    transaction's TimeZone."""
    filters = {"packaging_type": packaging_type, "brand": brand, "site_id": site_id}
    cursor = _read(conn, _JSON_QUERIES, window, bucket, filters, timeout_ms)
    row = cursor.fetchone()
    assert row is not None  # an aggregate always returns one row
    return str(row[0])


def return_rate_rows(
    conn: psycopg.Connection[Any],
    window: Window,
    bucket: Bucket,
    *,
    packaging_type: str | None,
    brand: str | None,
    site_id: str | None,
    timeout_ms: int | None = None,
) -> list[dict[str, Any]]:
    """The rows of return_rates_json as dicts, for the pages: the same figures read the
    same way (kg in kg, `bucket_start` the RFC 3339 text the JSON carries, in the window's
    zone), ordered by bucket and packaging type."""
    filters = {"packaging_type": packaging_type, "brand": brand, "site_id": site_id}
    cursor = _read(conn, _ROW_QUERIES, window, bucket, filters, timeout_ms)
    rows = []
    for values in cursor.fetchall():
        row = dict(zip(_ROW_FIELDS, values, strict=True))
        for name in _FLOAT_FIELDS:
            row[name] = _as_in_json(row[name])
        rows.append(row)
    return rows


_ROW_FIELDS = ("bucket_start", "packaging_type", "sold", "returned", "rejected",
               "return_rate", "sold_kg", "returned_kg")  # fmt: skip
_FLOAT_FIELDS = ("return_rate", "sold_kg", "returned_kg")
# From 1e15 on, PostgreSQL writes a float8 with an exponent (1e+15): a float in JSON.
_EXPONENT_FROM = 1e15


def _as_in_json(value: float | None) -> float | None:
    """A float8 as the JSON of return_rates_json holds it: PostgreSQL writes a whole
    number without its fraction (0, not 0.0), so the pages and CSVs show the API's text."""
    if value is not None and value.is_integer() and abs(value) < _EXPONENT_FROM:
        return int(value)
    return value


def _read(
    conn: psycopg.Connection[Any],
    queries: dict[str, str],
    window: Window,
    bucket: Bucket,
    filters: dict[str, str | None],
    timeout_ms: int | None,
) -> psycopg.Cursor[Any]:
    """Runs the one of `queries` that answers `window` (see return_rates_json)."""
    site_id = filters["site_id"]
    params: dict[str, Any] = {
        "unit": bucket.value,
        "from": window.start,
        "to": window.end,
        "tz": window.tz.key,
        **filters,
    }
    conn.execute("SELECT set_config('TimeZone', %s, true)", (window.tz.key,))
    days = rollup_days(conn, window)
    if days is not None:
        params |= {"from_day": days[0], "to_day": days[1]}
        return conn.execute(queries["return_rates_daily"], params)
    if site_id is None:
        with time_limited(conn, timeout_ms, lambda: _slow(conn, window, site_id, timeout_ms)):
            params |= hours_and_quarters(conn, window, bucket)
            # Never prepared: a generic plan cannot size the window's hours or quarters.
            return conn.execute(queries["return_rates_hourly"], params, prepare=False)
    with time_limited(conn, timeout_ms, lambda: _slow(conn, window, site_id, timeout_ms)):
        return conn.execute(queries["return_rates"], params)


def _slow(
    conn: psycopg.Connection[Any], window: Window, site_id: str | None, timeout_ms: int | None
) -> SlowWindow:
    zone = rollup_zone(conn)
    days = f"whole days in {zone} (from and to as dates, tz={zone}), read from day totals"
    if site_id is None:
        read, instead = "hourly and 15-minute counts", f"ask for {days}"
        fast = [whole_days_around(zone, window)]
    else:
        read = "15-minute counts (sites are counted per day in the rollup zone only)"
        instead = (
            f"ask for {days}, or leave out site_id: whole hours in a zone whose UTC offset "
            "is whole hours are read from hourly totals"
        )
        fast = [whole_days_around(zone, window), whole_hours_around(window)]
    detail = (
        f"return rates of this window add up {read} and took longer than {timeout_ms} ms "
        f"(the server's {SETTING}): {instead}"
    )
    return SlowWindow(detail, timeout_ms or 0, fast)
