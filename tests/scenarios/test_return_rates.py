"""Scenario: a known week of deposit sales and returns at shops in Oslo and London, around
midnight and across the 2026 spring DST change, published over MQTT through the real
worker. Every unit sold comes back with a set probability. Every number of
/v1/stats/return-rates is checked against values computed here from the scenario, in
Oslo and UTC buckets, with the day rollups kept in either zone."""

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
from schemas.migrations import migrate
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
# shop → (reverse-vending machine, the zone its clock reports in)
SITES = {"shop-oslo": ("rvm-oslo", "Europe/Oslo"), "shop-london": ("rvm-london", "Europe/London")}
START = datetime(2026, 3, 26, tzinfo=UTC)  # DST begins 2026-03-29 01:00 UTC in both zones
SPAN = timedelta(days=6)
RETURN_PROBABILITY = 0.85  # per unit sold; a returned unit is refused (rejected) 1 time in 10
REJECT_PROBABILITY = 0.10


def scenario(rng: random.Random) -> list[dict[str, Any]]:
    """Sales spread over the span, with extra weight just around Oslo and UTC midnights and
    the DST change; each unit sold comes back (to either shop) with RETURN_PROBABILITY,
    0 to 3 days later give or take ten minutes, so returns cluster at midnights too.
    Each event carries the device it is published from; its `ts` is in that shop's zone."""
    oslo = ZoneInfo("Europe/Oslo")
    instants: list[datetime] = [START + SPAN * rng.random() for _ in range(700)]
    for day in range(6):
        for midnight in (
            datetime(2026, 3, 26 + day, tzinfo=oslo).astimezone(UTC),
            datetime(2026, 3, 26 + day, tzinfo=UTC),
        ):
            instants += [midnight + timedelta(seconds=rng.randint(-600, 599)) for _ in range(20)]
    instants += [datetime(2026, 3, 29, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(-900, 899))
                 for _ in range(60)]  # fmt: skip
    events = []

    def add(ts: datetime, kind: str, gtin: str, qty: int = 1) -> None:
        device, zone = SITES[rng.choice(list(SITES))]
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "ts": ts.astimezone(ZoneInfo(zone)).isoformat(),
            "type": kind,
            "gtin": gtin,
            "qty": qty,
            "_device": device,
        }
        if kind == "rejected":
            event["reason"] = "damaged"
        events.append(event)

    for ts in instants:
        gtin = rng.choice(list(PRODUCTS))
        qty = rng.randint(1, 3)
        add(ts, "sold", gtin, qty)
        for _ in range(qty):
            if rng.random() < RETURN_PROBABILITY:
                back = ts + timedelta(days=rng.randint(0, 3), seconds=rng.randint(-600, 600))
                add(back, "rejected" if rng.random() < REJECT_PROBABILITY else "returned", gtin)
        if rng.random() < 0.05:
            add(ts + timedelta(hours=1), "washed", gtin)  # counted nowhere in return rates
    return events


def expected(
    events: list[dict[str, Any]],
    tz: ZoneInfo,
    unit: str,
    start: datetime,
    end: datetime,
    brand: str | None = None,
) -> list[tuple[datetime, str, int, int, int]]:
    """(bucket start, packaging type, sold, returned, rejected) of the events in
    [start, end), computed from the scenario."""
    sums: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        packaging, owner = PRODUCTS[e["gtin"]]
        if e["type"] not in ("sold", "returned", "rejected") or (brand and owner != brand):
            continue
        instant = datetime.fromisoformat(e["ts"])
        if not start <= instant < end:
            continue
        day = instant.astimezone(tz).date()
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
    for site, (device, _zone) in SITES.items():
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


# Oslo and UTC: read from the day rollups in their zone, the hourly rollup in the other.
# Kolkata (+05:30): from the 15-minute rollup.
@pytest.mark.parametrize("tz_name", ["Europe/Oslo", "UTC", "Asia/Kolkata"])
@pytest.mark.parametrize("unit", ["day", "week", "month", "total"])
def test_return_rates_match_the_scenario(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker,
    tz_name: str, unit: str,
) -> None:  # fmt: skip
    tz = ZoneInfo(tz_name)
    # Whole local days, in the zone asked for; the last returns fall after the window.
    start, end = datetime(2026, 3, 25, tzinfo=tz), datetime(2026, 4, 3, tzinfo=tz)
    key = create_key(db, Role.OPERATOR, "t")
    # Day rollups kept in UTC, then rebuilt in Oslo: whole days in the rollups' zone are
    # read from them, other zones from the hourly or 15-minute rollup; all must agree.
    for rollup_zone in ("UTC", "Europe/Oslo"):
        migrate(db_url, timezone=rollup_zone)
        app = create_app(Settings(database_url=db_url, mqtt_url=broker.url))
        with TestClient(app) as client:
            response = client.get(
                "/v1/stats/return-rates",
                params={"from": "2026-03-25", "to": "2026-04-03", "bucket": unit, "tz": tz_name},
                headers={"Authorization": f"Bearer {key}"},
            )
        got = rows_of(response, tz)
        assert got == expected(world, tz, unit, start, end), f"day rollups in {rollup_zone}"
        for row in response.json()["rows"]:
            weight = TYPES[row["packaging_type"]]
            assert row["return_rate"] == (row["returned"] / row["sold"] if row["sold"] else None)
            if weight is None:
                assert row["sold_kg"] is None and row["returned_kg"] is None
            else:
                assert row["sold_kg"] == pytest.approx(row["sold"] * weight / 1000)
                assert row["returned_kg"] == pytest.approx(row["returned"] * weight / 1000)


def test_the_return_probability_shows_in_the_totals(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker
) -> None:
    """Over a window holding every sale and its returns, each packaging type's
    return_rate is the scenario's probability (within sampling error)."""
    key = create_key(db, Role.OPERATOR, "t")
    params = {"from": "2026-03-20", "to": "2026-04-10", "bucket": "total", "tz": "UTC"}
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        rows = client.get(
            "/v1/stats/return-rates", params=params, headers={"Authorization": f"Bearer {key}"}
        ).json()["rows"]
    assert {r["packaging_type"] for r in rows} == set(TYPES)
    for row in rows:
        # 500 to 1,000 units sold per type: a standard error under 0.02.
        assert row["return_rate"] == pytest.approx(
            RETURN_PROBABILITY * (1 - REJECT_PROBABILITY), abs=0.06
        )
        assert row["rejected"] / row["sold"] == pytest.approx(
            RETURN_PROBABILITY * REJECT_PROBABILITY, abs=0.04
        )


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
    start, end = datetime(2026, 3, 25, tzinfo=tz), datetime(2026, 4, 3, tzinfo=tz)
    assert own == expected(world, tz, "total", start, end, brand="nordlys")
    assert {r[1] for r in own} == {"can-0.33l", "crate-24"}
    assert rows_of(other, tz) == []
