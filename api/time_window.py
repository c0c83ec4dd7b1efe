"""`from`/`to`/`tz` query parameters: parsed, checked, turned into instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError

from api.problems import Problem

# The rollups count per 15 minutes: a bound inside a quarter hour cannot be answered
# exactly, so it is refused rather than silently rounded.
GRANULARITY = timedelta(minutes=15)
# Longest window one request may ask for.
MAX_WINDOW = timedelta(days=3660)
# Window when neither bound is given: the last 30 local days, today included.
DEFAULT_DAYS = 30
# The instants any time parameter may name (from, to, GE_eventTime, LT_eventTime), ends
# included. Wide around every event that can be stored (none before 2000-01-01, SPEC §5),
# and a year inside Python's datetime (years 1-9999) so that a zone's offset, the default
# window or a month's step from a bound cannot overflow it (a 500 before).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
IN_RANGE = f"must lie between {EARLIEST:%Y-%m-%dT%H:%M:%SZ} and {LATEST:%Y-%m-%dT%H:%M:%SZ}"


def _in_range(instant: datetime) -> datetime:
    if not EARLIEST <= instant <= LATEST:
        raise PydanticCustomError("time_range", IN_RANGE)
    return instant


# A time query parameter: an RFC 3339 date-time with a UTC offset, within the range above;
# a 422 naming the parameter otherwise.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]


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
    is_date = len(value) == 10  # a date: local midnight
    try:
        if is_date:
            instant = datetime.combine(date.fromisoformat(value), time(), tz)
        else:
            instant = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            422,
            "invalid-time",
            f"{name} {value!r}: expected a date (2026-03-29) or an RFC 3339 date-time",
        ) from None
    if instant.tzinfo is None:
        raise Problem(422, "invalid-time", f"{name} {value!r}: a date-time needs a UTC offset")
    if not EARLIEST <= instant <= LATEST:
        raise Problem(422, "invalid-time", f"{name} {value!r}: {IN_RANGE}")
    if not is_date and instant.timestamp() % GRANULARITY.total_seconds():
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
