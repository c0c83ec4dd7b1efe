"""Which devices are registered and at which site, cached briefly per worker."""

from __future__ import annotations

import time
from collections.abc import Iterable

import psycopg

# How long a known device's site is trusted before it is read again (s): a device moved
# to another site is attributed to the new one within this time.
DEVICE_CACHE_TTL_S = 60.0


class DeviceDirectory:
    """device_id → site_id; unknown ids are asked of the database every time, so a device
    registered a moment ago is accepted at once."""

    def __init__(self, known_devices_sql: str) -> None:
        self._sql = known_devices_sql
        self._sites: dict[str, tuple[str, float]] = {}

    def sites(self, conn: psycopg.Connection, device_ids: Iterable[str]) -> dict[str, str]:
        """The site of each registered device among `device_ids`; unregistered ones are absent."""
        now = time.monotonic()
        found: dict[str, str] = {}
        missing: list[str] = []
        for device_id in set(device_ids):
            cached = self._sites.get(device_id)
            if cached and now - cached[1] < DEVICE_CACHE_TTL_S:
                found[device_id] = cached[0]
            else:
                missing.append(device_id)
        if missing:
            for device_id, site_id in conn.execute(self._sql, {"device_ids": missing}):
                self._sites[device_id] = (site_id, now)
                found[device_id] = site_id
        return found
