"""Scenario: a pool of reusable crates and cups with known histories (trips, duplicate
returns, losses) published over MQTT through the real worker; the reuse aggregates it keeps
and /v1/stats/reuse are checked against numbers computed here from the histories by SPEC
§7 (tests.factories.item_by_spec)."""

from __future__ import annotations

import json
import math
import random
import statistics
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import (
    ItemBySpec,
    assert_item_loops,
    count,
    item_by_spec,
    scans,
    with_check_digit,
)

pytestmark = pytest.mark.slow

CRATE = with_check_digit("0703801000999")
CUP = with_check_digit("703801000555")
TARGET = {"crate-24": 5, "cup-0.4l": 3}
NOW = datetime.now(UTC)


def history(rng: random.Random, start: datetime) -> list[tuple[datetime, str]]:
    """One item's life: commissioned, then trips of filled → sold → returned, sometimes
    a duplicate return, sometimes a trip without `sold`, sometimes lost on the market."""
    ts = start
    events = [(ts, "commissioned")]

    def step(kind: str, days: float) -> None:
        nonlocal ts
        ts += timedelta(days=days, seconds=rng.randint(1, 3600))
        events.append((ts, kind))

    for _ in range(rng.randint(0, 8)):
        step("filled", rng.uniform(1, 5))
        if rng.random() < 0.85:
            step("sold", rng.uniform(0.5, 3))
        step("returned", rng.uniform(2, 40))
        if rng.random() < 0.15:
            step("returned", rng.uniform(0, 2))  # a cloned label, or a double scan
        if rng.random() < 0.3:
            step("washed", rng.uniform(0, 1))
    if rng.random() < 0.3:
        step("filled", rng.uniform(1, 3))
        step("sold", rng.uniform(0, 2))  # out on the market as the story ends
    return events


def expected_row(items: list[ItemBySpec], target: int) -> dict[str, Any]:
    """/v1/stats/reuse's row of a packaging type, from its items' histories by SPEC §7."""
    trips_per_item = [len(item.trips) for item in items]
    trip_days = [
        (end.ts - started).total_seconds() / 86400
        for item in items
        for end, started in item.trips
        if started is not None
    ]
    lost = sum(
        item.last.type in ("sold", "filled") and item.last.ts < NOW - timedelta(days=180)
        for item in items
    )
    in_loop = sum(item.ever_in_loop for item in items)
    ordered = sorted(trips_per_item)

    def disc(fraction: float) -> int:
        return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]

    bars: dict[int, int] = defaultdict(int)
    for trips in trips_per_item:
        bars[trips] += 1
    return {
        "items": len(items),
        "trips": sum(trips_per_item),
        "mean_trips": pytest.approx(sum(trips_per_item) / len(items)),
        "p50_trips": disc(0.5),
        "p90_trips": disc(0.9),
        "max_trips": ordered[-1],
        "target_trips": target,
        "reached_target": sum(t >= target for t in trips_per_item),
        "mean_trip_days": pytest.approx(statistics.fmean(trip_days)),
        "median_trip_days": pytest.approx(statistics.median(trip_days)),
        "lost": lost,
        "loss_rate": pytest.approx(lost / in_loop),
        "histogram": [{"trips": t, "items": n} for t, n in sorted(bars.items())],
    }


def test_reuse_matches_the_histories(
    db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str, make_worker: Any
) -> None:
    rng = random.Random(7)
    db.execute(
        "INSERT INTO packaging_types (id, name, material, reusable, target_trips) VALUES"
        " ('crate-24', 'Crate', 'HDPE', true, 5), ('cup-0.4l', 'Cup', 'PP', true, 3)"
    )
    db.execute(
        "INSERT INTO products VALUES (%s, 'crate-24', 'nordlys', 'Crate'),"
        " (%s, 'cup-0.4l', 'koppen', 'Cup')",
        (CRATE.zfill(14), CUP.zfill(14)),
    )
    db.execute("INSERT INTO sites (id, name, kind) VALUES ('plant', 'Plant', 'filling')")
    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('line-1', 'plant', 'filler')")
    histories: dict[str, list[ItemBySpec]] = {"crate-24": [], "cup-0.4l": []}
    payloads = []
    for packaging, gtin, n in (("crate-24", CRATE, 80), ("cup-0.4l", CUP, 50)):
        for i in range(n):
            # Starts far enough back that some items have been on the market > 180 days.
            events = history(rng, NOW - timedelta(days=rng.uniform(200, 420)))
            item = [
                {"event_id": str(uuid.uuid4()), "ts": ts.isoformat(), "type": kind,
                 "gtin": gtin, "serial": f"{packaging[:2].upper()}{i:05d}"}
                for ts, kind in events
                if ts < NOW - timedelta(minutes=1)
            ]  # fmt: skip
            histories[packaging].append(item_by_spec(scans(item)))
            payloads += item
    rng.shuffle(payloads)  # arrival order must not matter
    make_worker()
    publish_all(
        broker,
        topic_root,
        [("line-1", json.dumps({"events": payloads[i : i + 300]}).encode())
         for i in range(0, len(payloads), 300)],
    )  # fmt: skip
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= len(payloads), 60, "events")
    assert_item_loops(db)

    operator = create_key(db, Role.OPERATOR, "t")
    brand = create_key(db, Role.BRAND, "t", brand="koppen")
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        rows = client.get(
            "/v1/stats/reuse", headers={"Authorization": f"Bearer {operator}"}
        ).json()["rows"]
        brand_rows = client.get(
            "/v1/stats/reuse", headers={"Authorization": f"Bearer {brand}"}
        ).json()["rows"]
        anomalies = client.get(
            "/v1/stats/anomalies",
            params={"from": (NOW - timedelta(days=500)).isoformat(), "limit": 1000},
            headers={"Authorization": f"Bearer {operator}"},
        ).json()
    by_type = {row.pop("packaging_type"): row for row in rows}
    assert set(by_type) == set(TARGET)
    for packaging, target in TARGET.items():
        assert by_type[packaging] == expected_row(histories[packaging], target), packaging
    assert [row["packaging_type"] for row in brand_rows] == ["cup-0.4l"]
    # Every duplicate return of the histories, and nothing else, is listed as an anomaly.
    duplicates = {
        (e.serial, e.ts) for items in histories.values() for item in items
        for e, _ in item.duplicates
    }  # fmt: skip
    listed = {
        (d["serial"], datetime.fromisoformat(d["ts"])) for d in anomalies["duplicate_returns"]
    }
    assert duplicates and listed == duplicates
