"""Simulated time: instants as integer microseconds since the Unix epoch (exact, cheap to
compare and to keep in a heap), converted to aware datetimes only when an event leaves."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(instant: datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def to_datetime(us: int, zone: tzinfo = UTC) -> datetime:
    """Microseconds since the epoch as an aware datetime in `zone`."""
    return (_EPOCH + timedelta(microseconds=us)).astimezone(zone)


def days_us(days: float) -> int:
    """A (fractional) number of days in microseconds."""
    return round(days * US_PER_DAY)


def seconds_us(seconds: float) -> int:
    return round(seconds * US_PER_S)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse_window(text: str | None) -> tuple[int, int] | None:
    """ "07:00-23:00" → (420, 1380) minutes after local midnight; None stays None."""
    if text is None:
        return None
    start, end = (_minutes(part) for part in text.split("-"))
    if not 0 <= start < end <= 24 * 60:
        raise ValueError(f"opening hours {text!r}: closing must come after opening, same day")
    return start, end


class OpeningHours:
    """When a site works: one window per local weekday (or closed), holidays closed."""

    def __init__(
        self,
        zone: tzinfo,
        weekdays: list[tuple[int, int] | None],
        holidays: frozenset[tuple[int, int]] = frozenset(),
    ) -> None:
        if len(weekdays) != 7:
            raise ValueError("one window (or None) per weekday, Monday first")
        if not any(weekdays):
            raise ValueError("a site must be open on at least one weekday")
        self.zone = zone
        self._weekdays = weekdays
        self._holidays = holidays
        self._windows: dict[date, tuple[int, int] | None] = {}

    @classmethod
    def from_text(
        cls,
        zone: tzinfo,
        weekdays: str | None,
        saturday: str | None,
        sunday: str | None,
        holidays: Sequence[str] = (),
    ) -> OpeningHours:
        """From "HH:MM-HH:MM" texts and "MM-DD" holidays."""
        weekday = parse_window(weekdays)
        days = [weekday] * 5 + [parse_window(saturday), parse_window(sunday)]
        closed = frozenset((int(h[:2]), int(h[3:])) for h in holidays)
        return cls(zone, days, closed)

    def window_on(self, day: date) -> tuple[int, int] | None:
        """Opening and closing instant (µs) of local `day`, or None when closed."""
        if day not in self._windows:
            minutes = self._weekdays[day.weekday()]
            if minutes is None or (day.month, day.day) in self._holidays:
                self._windows[day] = None
            else:
                midnight = datetime.combine(day, time(), self.zone)
                self._windows[day] = (
                    to_us(midnight + timedelta(minutes=minutes[0])),
                    to_us(midnight + timedelta(minutes=minutes[1])),
                )
        return self._windows[day]

    def _local_day(self, us: int) -> date:
        return to_datetime(us, self.zone).date()

    def next_window(self, us: int) -> tuple[int, int]:
        """The window containing `us`, else the next one to open after it."""
        day = self._local_day(us)
        for _ in range(400):  # a site open one weekday outside holidays opens within weeks
            window = self.window_on(day)
            if window is not None and us < window[1]:
                return window
            day += timedelta(days=1)
        raise AssertionError("no opening in 400 days")  # pragma: no cover

    def next_opening_after(self, us: int) -> int:
        """The first opening instant strictly after `us`."""
        window = self.next_window(us)
        if window[0] > us:
            return window[0]
        return self.next_window(window[1])[0]

    def snap(self, us: int, rng: random.Random, spread_s: float = 3 * 3600) -> int:
        """`us` if open then; else a moment soon after the next opening (uniform over the
        first `spread_s` of that window), so that nothing piles up at the opening minute."""
        start, end = self.next_window(us)
        if start <= us:
            return us
        spread = min(seconds_us(spread_s), end - start - US_PER_S)
        return start + rng.randrange(max(spread, 1))
