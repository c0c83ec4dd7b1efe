"""Scenario (issue 5, acceptance 2): a simulated year for 20 shops and 2 sorting sites,
time-compressed, published by the simulator's device clients through the real broker and
ingest worker; /v1/stats/return-rates?bucket=total and /v1/stats/reuse must equal the
simulator's ground truth."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from devices.simulator import builtin_scenario, run_history, world_seed
from devices.simulator.ground_truth import day_window
from schemas.api_keys import Role, create_key
from schemas.registry import apply_seed
from schemas.settings import Settings
from tests.conftest import Broker, wait_until
from tests.factories import assert_item_loops, count

pytestmark = pytest.mark.slow

# The shipped year at 15 % of its volume: about 20,000 events, a few seconds to publish.
CI_SCALE = 0.15
# Floats the database computes in numeric (averages, trip days) and returns as float8 may
# differ from the ground truth's IEEE arithmetic in the last digits; everything else,
# counts, return rates and loss rates (both int / int in Python) included, must be equal
# exactly.
# A fixed year, not the one ending now: the same events on every run, so the checks below
# of what the year contains (refusals, duplicate returns, items lost) cannot turn flaky.
YEAR_END = datetime(2026, 6, 1, tzinfo=UTC)
NUMERIC_FLOATS = ("mean_trips", "mean_trip_days", "median_trip_days")


def assert_reuse_equal(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    by_type = {row["packaging_type"]: row for row in got}
    assert set(by_type) == {row["packaging_type"] for row in expected}
    for want in expected:
        row = by_type[want["packaging_type"]]
        exact = {k: v for k, v in want.items() if k not in NUMERIC_FLOATS}
        assert {k: row[k] for k in exact} == exact, want["packaging_type"]
        for key in NUMERIC_FLOATS:
            if want[key] is None:
                assert row[key] is None, key
            else:
                assert math.isclose(row[key], want[key], rel_tol=1e-12), (key, row[key], want[key])


def test_a_simulated_year_equals_its_ground_truth(
    db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str, make_worker: Any
) -> None:
    year = builtin_scenario("norway-year")
    # More cloned labels than in the shipped year, so that duplicate returns show at this size.
    loops = [{**loop, "clone_share": 0.1} for loop in year.model_dump()["reuse"]]
    scenario = year.with_overrides(
        top={"scale": CI_SCALE, "reuse": loops}, timing={"compress": "max", "end": YEAR_END}
    )
    assert (scenario.world.shops, scenario.world.sorting_sites) == (20, 2)
    assert scenario.timing.duration == timedelta(days=365)
    with psycopg.connect(db_url) as conn:
        apply_seed(conn, world_seed(scenario))
    make_worker()

    result = run_history(scenario, broker.url, topic_root)

    assert not result.stopped and result.published == result.truth.events
    assert result.end - result.start == timedelta(days=365)
    wait_until(
        lambda: count(db, "SELECT count(*) FROM events") >= result.published, 60, "all events"
    )
    assert count(db, "SELECT count(*) FROM events") == result.published
    assert count(db, "SELECT count(*) FROM dead_letters") == 0
    assert_item_loops(db)
    truth = result.truth
    # The year is realistic enough to test something: refusals, foreign containers,
    # duplicate returns of cloned labels, items lost on the market.
    assert truth.by_type["rejected"] > 0 and truth.duplicate_returns() > 0

    key = create_key(db, Role.OPERATOR, "t")
    auth = {"Authorization": f"Bearer {key}"}
    first, last = truth.first, truth.last
    assert first is not None and last is not None
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        # Whole UTC days (read from the day rollups) and whole Oslo days (hourly rollup).
        for tz in ("UTC", "Europe/Oslo"):
            start, end = day_window(first, last, ZoneInfo(tz))
            response = client.get(
                "/v1/stats/return-rates",
                params={"from": start.isoformat(), "to": end.isoformat(), "bucket": "total",
                        "tz": tz},
                headers=auth,
            )  # fmt: skip
            assert response.status_code == 200, response.text
            rows = response.json()["rows"]
            for row in rows:
                row["bucket_start"] = datetime.fromisoformat(row["bucket_start"])
            expected = truth.return_rates(start, end)
            for row in expected:
                row["bucket_start"] = datetime.fromisoformat(row["bucket_start"])
            assert rows == expected, tz
            # The material figures of the same window: sorting sites' weights and streams.
            response = client.get(
                "/v1/stats/materials",
                params={"from": start.isoformat(), "to": end.isoformat(), "bucket": "total",
                        "tz": tz},
                headers=auth,
            )  # fmt: skip
            assert response.status_code == 200, response.text
            materials = response.json()["rows"]
            for row in materials:
                row["bucket_start"] = datetime.fromisoformat(row["bucket_start"])
            expected = truth.materials(start, end)
            for row in expected:
                row["bucket_start"] = datetime.fromisoformat(str(row["bucket_start"]))
            assert any(row["sorted_energy_recovery_kg"] for row in expected)
            assert any(row["fibre_share"] for row in expected)
            assert materials == expected, tz
        # `lost` is relative to the moment of the query: the truth before and after it.
        before = datetime.now(UTC)
        reuse = client.get("/v1/stats/reuse", headers=auth)
        after = datetime.now(UTC)
        anomalies = client.get(
            "/v1/stats/anomalies",
            params={"from": first.isoformat(), "to": (last + timedelta(seconds=1)).isoformat(),
                    "limit": 1000},
            headers=auth,
        )  # fmt: skip
    assert reuse.status_code == 200, reuse.text
    expected_reuse = truth.reuse(before)
    assert truth.reuse(after) == expected_reuse, "an item turned lost during the query"
    assert {row["packaging_type"] for row in expected_reuse} == {"glass-0.5l", "crate-24"}
    assert all(row["lost"] > 0 for row in expected_reuse)
    assert_reuse_equal(reuse.json()["rows"], expected_reuse)
    assert len(anomalies.json()["duplicate_returns"]) == truth.duplicate_returns()
