"""Scenario (the week of test_return_rates): return rates of windows that are not whole
days in the rollup zone add up the hourly rollup and, for the hours that a bound or a
bucket's start cuts, the 15-minute rollup. Windows on quarter hours, zones with :30 and
:45 offsets and a window across the spring DST change are checked against values computed
from the scenario."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import Broker
from tests.scenarios.test_return_rates import expected, rows_of, world

pytestmark = pytest.mark.slow
__all__ = ["world"]  # the scenario's fixture, used here

# (zone, from, to): each with a bucket boundary or a bound inside a UTC hour.
WINDOWS = [
    # +05:30: every local midnight cuts a UTC hour; bounds on quarter hours.
    ("Asia/Kolkata", "2026-03-26T05:15:00+05:30", "2026-04-01T23:45:00+05:30"),
    # +05:45: local midnights at a quarter past the UTC hour.
    ("Asia/Kathmandu", "2026-03-26", "2026-04-02"),
    # Whole-hour zones, bounds on quarter hours: UTC, and London across its DST change.
    ("UTC", "2026-03-26T23:45:00Z", "2026-03-31T00:30:00Z"),
    ("Europe/London", "2026-03-27T22:45:00Z", "2026-03-30T00:15:00+01:00"),
]


@pytest.mark.parametrize(("tz_name", "start", "end"), WINDOWS)
def test_hours_and_quarter_hours_add_up_to_the_scenario(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker,
    tz_name: str, start: str, end: str,
) -> None:  # fmt: skip
    tz = ZoneInfo(tz_name)
    bounds = [
        datetime.fromisoformat(b) if "T" in b else datetime.fromisoformat(b).replace(tzinfo=tz)
        for b in (start, end)
    ]
    headers = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 't')}"}
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        for unit in ("day", "week", "month", "total"):
            for brand in (None, "nordlys"):
                params = {"from": start, "to": end, "bucket": unit, "tz": tz_name}
                response = client.get(
                    "/v1/stats/return-rates",
                    params={**params, **({"brand": brand} if brand else {})},
                    headers=headers,
                )
                want = expected(world, tz, unit, *bounds, brand=brand)
                assert want, "the window holds events"
                assert rows_of(response, tz) == want, (unit, brand)
