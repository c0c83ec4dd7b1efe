"""Times as the pages show them: in the page's zone (LOOPTRACK_TIMEZONE unless the page's
`tz` names another), each with its zone named, so no reader takes a UTC time for a local
one or the other way round."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

NO_TIME = "\N{EN DASH}"


def local_time(instant: datetime | None, zone: str, *, seconds: bool = True) -> str:
    """`instant` in `zone` with the zone's abbreviation, e.g. "2026-12-06 14:05:09 CET"
    (a zone without one shows its offset, e.g. "-03"); an en dash for no time."""
    if instant is None:
        return NO_TIME
    shown = instant.astimezone(ZoneInfo(zone))
    return shown.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
