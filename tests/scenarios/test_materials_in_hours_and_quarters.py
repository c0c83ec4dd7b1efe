"""Scenario (the week of test_materials): material flows of windows that are not whole
days in the rollup zone add up the hour rows and, for the hours that a bound or a
bucket's start cuts, the quarter hours weighed at query time. Windows on quarter hours and
a zone with a :30 offset are checked against values computed from the scenario."""

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
from tests.scenarios.test_materials import answered, assert_rows_equal, expected, world

pytestmark = pytest.mark.slow
__all__ = ["world"]  # the scenario's fixture, used here

WINDOWS = [
    # +05:30: every local midnight cuts a UTC hour; bounds on quarter hours.
    ("Asia/Kolkata", "2026-03-26T05:15:00+05:30", "2026-04-02T23:45:00+05:30"),
    # A whole-hour zone, bounds on quarter hours (one across the product's declaration
    # change, 2026-03-28 09:45 UTC).
    ("UTC", "2026-03-26T23:45:00Z", "2026-03-28T09:30:00Z"),
    ("UTC", "2026-03-28T09:15:00Z", "2026-04-02T00:30:00Z"),
]


@pytest.mark.parametrize(("tz_name", "start", "end"), WINDOWS)
def test_hours_and_quarter_hours_weigh_up_to_the_scenario(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker,
    tz_name: str, start: str, end: str,
) -> None:  # fmt: skip
    tz = ZoneInfo(tz_name)
    bounds = [datetime.fromisoformat(b) for b in (start, end)]
    headers = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 't')}"}
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        for unit in ("day", "month", "total"):
            response = client.get(
                "/v1/stats/materials",
                params={"from": start, "to": end, "bucket": unit, "tz": tz_name},
                headers=headers,
            )
            want = expected(world, tz, unit, *bounds)
            assert want, "the window holds events"
            assert_rows_equal(answered(response, tz), want)
