"""Scenario: a known week of sales and returns in Oslo and UTC, around midnight and across
the 2026 spring DST change, published over MQTT through the real worker. Every number of
/v1/stats/return-rates is checked against values computed here from the scenario."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import count, with_check_digit

pytestmark = pytest.mark.slow

# packaging type → weight (g); products → (packaging type, brand)
TYPES = {"pet-0.5l": 22, "can-0.33l": 13, "crate-24": None}
PRODUCTS = {
    with_check_digit("703801000123"): ("pet-0.5l", "fjord"),
    with_check_digit("703801000234"): ("can-0.33l", "fjord"),
    with_check_digit("731086500470"): ("can-0.33l", "nordlys"),
    with_check_digit("0703801000999"): ("crate-24", "nordlys"),
}
SITES = {"shop-oslo": "rvm-oslo", "shop-bergen": "rvm-bergen"}
START = datetime(2026, 3, 26, tzinfo=UTC)  # DST in Oslo begins 2026-03-29 01:00 UTC
SPAN = timedelta(days=6)


def scenario(rng: random.Random) -> list[dict[str, Any]]:
    """Events spread over the span, with extra weight just around Oslo and UTC midnights
    and the DST change; each carries the device it is published from."""
    oslo = ZoneInfo("Europe/Oslo")
    instants: list[datetime] = [START + SPAN * rng.random() for _ in range(1500)]
    for day in range(6):
        for midnight in (
            datetime(2026, 3, 26 + day, tzinfo=oslo).astimezone(UTC),
            datetime(2026, 3, 26 + day, tzinfo=UTC),
        ):
            instants += [midnight + timedelta(seconds=rng.randint(-600, 599)) for _ in range(40)]
    instants += [datetime(2026, 3, 29, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(-900, 899))
                 for _ in range(100)]  # fmt: skip
    events = []
    for ts in instants:
        kind = rng.choices(["sold", "returned", "rejected", "washed"], [45, 40, 10, 5])[0]
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "ts": ts.astimezone(rng.choice([UTC, ZoneInfo("Europe/Oslo")])).isoformat(),
            "type": kind,
            "gtin": rng.choice(list(PRODUCTS)),
            "qty": rng.randint(1, 3) if kind == "sold" else 1,
            "_device": rng.choice(list(SITES.values())),
        }
        if kind == "rejected":
            event["reason"] = "damaged"
        events.append(event)
    return events


def expected(
    events: list[dict[str, Any]], tz: ZoneInfo, unit: str, start: datetime, brand: str | None = None
) -> list[tuple[datetime, str, int, int, int]]:
    """(bucket start, packaging type, sold, returned, rejected), computed from the scenario."""
    sums: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        packaging, owner = PRODUCTS[e["gtin"]]
        if e["type"] not in ("sold", "returned", "rejected") or (brand and owner != brand):
            continue
        local = datetime.fromisoformat(e["ts"]).astimezone(tz)
        day = local.date()
        if unit == "day":
            first = day
        elif unit == "week":
            first = day - timedelta(days=day.weekday())
        elif unit == "month":
            first = date(day.year, day.month, 1)
        else:
            first = None
        bucket = (
            start.astimezone(tz)
            if first is None
            else datetime(first.year, first.month, first.day, tzinfo=tz)
        )
        sums[(bucket, packaging)][("sold", "returned", "rejected").index(e["type"])] += e["qty"]
    return sorted((b, p, *v) for (b, p), v in sums.items())  # type: ignore[misc]


@pytest.fixture
def world(db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str,
          make_worker: Any) -> list[dict[str, Any]]:  # fmt: skip
    for packaging, weight in TYPES.items():
        db.execute(
            "INSERT INTO packaging_types (id, name, material, reusable, weight_g)"
            " VALUES (%s, %s, 'PET', %s, %s)",
            (packaging, packaging, weight is None, weight),
        )
    for gtin, (packaging, brand) in PRODUCTS.items():
        db.execute(
            "INSERT INTO products VALUES (%s, %s, %s, 'p')", (gtin.zfill(14), packaging, brand)
        )
    for site, device in SITES.items():
        db.execute("INSERT INTO sites (id, name, kind) VALUES (%s, %s, 'shop')", (site, site))
        db.execute("INSERT INTO devices (id, site_id, kind) VALUES (%s, %s, 'rvm')", (device, site))
    events = scenario(random.Random(20260329))
    make_worker()
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_device[e["_device"]].append({k: v for k, v in e.items() if k != "_device"})
    messages = [
        (device, json.dumps({"events": batch[i : i + 200]}).encode())
        for device, batch in by_device.items()
        for i in range(0, len(batch), 200)
    ]
    publish_all(broker, topic_root, messages)
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= len(events), 60, "all events")
    return events


def rows_of(response: Any, tz: ZoneInfo) -> list[tuple[datetime, str, int, int, int]]:
    """The rows as tuples; each bucket_start must carry the zone's offset at that instant."""
    assert response.status_code == 200, response.text
    rows = []
    for r in response.json()["rows"]:
        start = datetime.fromisoformat(r["bucket_start"])
        assert start.utcoffset() == start.astimezone(tz).utcoffset(), r["bucket_start"]
        rows.append((start, r["packaging_type"], r["sold"], r["returned"], r["rejected"]))
    return rows


@pytest.mark.parametrize("tz_name", ["Europe/Oslo", "UTC"])
@pytest.mark.parametrize("unit", ["day", "week", "month", "total"])
def test_return_rates_match_the_scenario(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker,
    tz_name: str, unit: str,
) -> None:  # fmt: skip
    tz = ZoneInfo(tz_name)
    # Whole local days covering the scenario, in the zone asked for.
    start = datetime(2026, 3, 25, tzinfo=tz)
    key = create_key(db, Role.OPERATOR, "t")
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        response = client.get(
            "/v1/stats/return-rates",
            params={"from": "2026-03-25", "to": "2026-04-03", "bucket": unit, "tz": tz_name},
            headers={"Authorization": f"Bearer {key}"},
        )
    got = rows_of(response, tz)
    assert got == expected(world, tz, unit, start)
    for row in response.json()["rows"]:
        weight = TYPES[row["packaging_type"]]
        assert row["return_rate"] == (row["returned"] / row["sold"] if row["sold"] else None)
        if weight is None:
            assert row["sold_kg"] is None and row["returned_kg"] is None
        else:
            assert row["sold_kg"] == pytest.approx(row["sold"] * weight / 1000)
            assert row["returned_kg"] == pytest.approx(row["returned"] * weight / 1000)


def test_a_brand_key_sees_its_own_numbers_only(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker
) -> None:
    tz = ZoneInfo("Europe/Oslo")
    key = create_key(db, Role.BRAND, "t", brand="nordlys")
    params = {"from": "2026-03-25", "to": "2026-04-03", "bucket": "total", "tz": "Europe/Oslo"}
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        own = rows_of(client.get("/v1/stats/return-rates", params=params, headers=auth), tz)
        other = client.get(
            "/v1/stats/return-rates", params={**params, "brand": "fjord"}, headers=auth
        )
    start = datetime(2026, 3, 25, tzinfo=tz)
    assert own == expected(world, tz, "total", start, brand="nordlys")
    assert {r[1] for r in own} == {"can-0.33l", "crate-24"}
    assert rows_of(other, tz) == []
