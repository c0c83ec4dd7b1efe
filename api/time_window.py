"""`from`/`to`/`tz` query parameters: parsed, checked, turned into instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.problems import Problem

# The rollups count per 15 minutes: a bound inside a quarter hour cannot be answered
# exactly, so it is refused rather than silently rounded.
GRANULARITY = timedelta(minutes=15)
# Longest window one request may ask for.
MAX_WINDOW = timedelta(days=3660)
# Window when neither bound is given: the last 30 local days, today included.
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) as instants, and the zone buckets are local to."""

    start: datetime
    end: datetime
    tz: ZoneInfo


def zone(name: str) -> ZoneInfo:
    """An IANA zone by name; 422 when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Problem(
            422, "unknown-time-zone", f"unknown time zone {name!r} (IANA names, e.g. Europe/Oslo)"
        ) from None


def _bound(name: str, value: str, tz: ZoneInfo) -> datetime:
    try:
        if len(value) == 10:  # a date: local midnight
            return datetime.combine(date.fromisoformat(value), time(), tz)
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            422,
            "invalid-time",
            f"{name} {value!r}: expected a date (2026-03-29) or an RFC 3339 date-time",
        ) from None
    if instant.tzinfo is None:
        raise Problem(422, "invalid-time", f"{name} {value!r}: a date-time needs a UTC offset")
    if instant.timestamp() % GRANULARITY.total_seconds():
        raise Problem(
            422,
            "invalid-time",
            f"{name} {value!r}: must fall on a quarter hour (statistics are kept per 15 minutes)",
        )
    return instant


def window(start: str | None, end: str | None, tz_name: str, today: date | None = None) -> Window:
    """The window of a statistics request; 422 for any bound that cannot be honoured."""
    tz = zone(tz_name)
    if end is None:
        local_today = today or datetime.now(tz).date()
        end_at = datetime.combine(local_today + timedelta(days=1), time(), tz)
    else:
        end_at = _bound("to", end, tz)
    start_at = (
        _bound("from", start, tz) if start is not None else end_at - timedelta(days=DEFAULT_DAYS)
    )
    if start_at >= end_at:
        raise Problem(
            422,
            "invalid-window",
            f"from ({start_at.isoformat()}) must be before to ({end_at.isoformat()})",
        )
    if end_at - start_at > MAX_WINDOW:
        raise Problem(422, "invalid-window", f"the window may span at most {MAX_WINDOW.days} days")
    return Window(start_at.astimezone(UTC), end_at.astimezone(UTC), tz)
