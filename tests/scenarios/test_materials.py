"""Scenario: a week of sales, returns and sorting, published over MQTT through the real
worker, and every figure of /v1/stats/materials checked against values computed here from
the scenario by docs/materials.md: Oslo and UTC buckets by day, month and in total, with
the day rollups kept in either zone. Sorting counts come with and without a measured
weight, into material, energy, residual, registered and unmapped streams. One product is
re-registered mid-week with another recycled share, declared from an instant between its
sales: sales before it keep the old share and sales after it take the new one, whichever
order events and the change arrive in (some sales after the instant were counted before
the change, some before it arrive after the change)."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
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


@dataclass(frozen=True)
class Declared:
    material: str
    weight_g: Decimal | None
    recycled_pct: Decimal
    renewable_pct: Decimal
    fibre: bool


TYPES: dict[str, dict[str, Any]] = {
    "pet-0.5l": {"name": "PET 0.5 l", "material": "PET", "weight_g": 22,
                 "recycled_content_pct": 30},
    "can-0.33l": {"name": "Can 0.33 l", "material": "aluminium", "weight_g": "13.5",
                  "recycled_content_pct": "72.5"},
    "fibre-cup": {"name": "Fibre cup", "material": "fibre", "weight_g": 12, "fibre_based": True,
                  "renewable_content_pct": 80, "recycled_content_pct": 15},
    "crate": {"name": "Crate", "material": "HDPE", "reusable": True},  # no nominal weight
}  # fmt: skip
COLA, WATER, PILS, CUP, CRATE = (
    with_check_digit(body)
    for body in ("703801000123", "703801000234", "731086500470", "703801000345", "703801000456")
)
UNREGISTERED = with_check_digit("570123400015")
PRODUCTS: dict[str, dict[str, Any]] = {
    COLA: {"packaging_type": "pet-0.5l", "brand": "fjord", "name": "Cola"},
    WATER: {"packaging_type": "pet-0.5l", "brand": "fjord", "name": "Water",
            "recycled_content_pct": 50},
    PILS: {"packaging_type": "can-0.33l", "brand": "nordlys", "name": "Pils"},
    CUP: {"packaging_type": "fibre-cup", "brand": "fjord", "name": "Cup"},
    CRATE: {"packaging_type": "crate", "brand": "nordlys", "name": "Crate"},
}  # fmt: skip
# Water moves to 80 % recycled PET from this instant (a quarter hour), declared mid-week.
SWITCH = datetime(2026, 3, 28, 9, 45, tzinfo=UTC)
WATER_AFTER = 80
# Streams besides the seeded ones: one registered, one nobody mapped.
PET_CLEAR = {"outcome": "material_recycling", "material": "PET", "name": "Clear PET bales"}
UNMAPPED = "mixed-bale"
OUTCOMES = {
    "reuse": "reuse", "PET": "material_recycling", "pet-clear": "material_recycling",
    "aluminium": "material_recycling", "fibre": "material_recycling",
    "HDPE": "material_recycling", "energy": "energy_recovery", "residual": "residual",
    UNMAPPED: "unmapped",
}  # fmt: skip
START = datetime(2026, 3, 26, 12, tzinfo=UTC)  # the week spans the DST change and April
SPAN = timedelta(days=7)
DEVICES = {"sold": "pos-1", "returned": "rvm-1", "sorted": "sorter-1"}


def declared(gtin: str, ts: datetime) -> Declared | None:
    """What the scenario registered for `gtin`, in force at `ts` (None: unregistered)."""
    product = PRODUCTS.get(gtin)
    if product is None:
        return None
    kind = TYPES[product["packaging_type"]]
    recycled = product.get("recycled_content_pct", kind.get("recycled_content_pct", 0))
    if gtin == WATER and ts >= SWITCH:
        recycled = WATER_AFTER
    weight = kind.get("weight_g")
    return Declared(
        kind["material"],
        None if weight is None else Decimal(str(weight)),
        Decimal(str(recycled)),
        Decimal(str(product.get("renewable_content_pct", kind.get("renewable_content_pct", 0)))),
        product.get("fibre_based", kind.get("fibre_based", False)),
    )


def scenario(rng: random.Random) -> list[dict[str, Any]]:
    """Sales (qty 1-6), returns of most units, and sorting counts of 5-60 packages; 3 in 5
    sorting counts carry a weight measured in quarter grams (exact in binary, so sums are
    exact on both sides), off the nominal weight by up to 4 %."""
    events: list[dict[str, Any]] = []

    def add(kind: str, ts: datetime, gtin: str, qty: int, **extra: Any) -> None:
        events.append({"event_id": str(uuid.uuid4()), "ts": ts.isoformat(), "type": kind,
                       "gtin": gtin, "qty": qty, **extra})  # fmt: skip

    gtins = [*PRODUCTS, UNREGISTERED]
    for _ in range(500):
        ts = START + SPAN * rng.random()
        gtin = rng.choice(gtins)
        add("sold", ts, gtin, rng.randint(1, 6))
    # Sales of Water just around the switch, on both sides of it.
    for minutes in (-20, -16, -15, -1, 0, 1, 14, 15, 16, 29):
        add("sold", SWITCH + timedelta(minutes=minutes, seconds=rng.randint(0, 59)), WATER, 3)
    for _ in range(600):
        add("returned", START + SPAN * rng.random(), rng.choice(gtins), 1)
    for _ in range(160):
        ts = START + SPAN * rng.random()
        gtin = rng.choice(gtins)
        material = TYPES[PRODUCTS[gtin]["packaging_type"]]["material"] if gtin in PRODUCTS else None
        stream = rng.choice(
            [s for s in OUTCOMES if s in (material, "pet-clear" if material == "PET" else "")]
            + ["energy", "residual", UNMAPPED, "reuse"]
        )
        qty = rng.randint(5, 60)
        extra: dict[str, Any] = {"stream": stream}
        nominal = declared(gtin, ts)
        if rng.random() < 0.6:
            base = float(nominal.weight_g) if nominal and nominal.weight_g else 30.0
            extra["weight_g"] = round(qty * base * rng.uniform(0.96, 1.04) * 4) / 4
        add("sorted", ts, gtin, qty, **extra)
    return events


FIELDS = (
    "placed_kg", "collected_kg", "sorted_kg", "sorted_reuse_kg", "sorted_recycling_kg",
    "sorted_energy_recovery_kg", "sorted_residual_kg", "sorted_unmapped_kg",
    "recycled_content_kg", "renewable_content_kg", "fibre_kg",
)  # fmt: skip
RATES = {
    "collection_rate": ("collected_kg", "placed_kg"),
    "material_recycling_rate": ("sorted_recycling_kg", "placed_kg"),
    "reuse_share": ("sorted_reuse_kg", "sorted_kg"),
    "recycled_content_share": ("recycled_content_kg", "placed_kg"),
    "renewable_content_share": ("renewable_content_kg", "placed_kg"),
    "fibre_share": ("fibre_kg", "placed_kg"),
}
BY_OUTCOME = {
    "reuse": "sorted_reuse_kg", "material_recycling": "sorted_recycling_kg",
    "energy_recovery": "sorted_energy_recovery_kg", "residual": "sorted_residual_kg",
    "unmapped": "sorted_unmapped_kg",
}  # fmt: skip


def bucket_of(ts: datetime, tz: ZoneInfo, unit: str, start: datetime) -> datetime:
    day = ts.astimezone(tz).date()
    if unit == "total":
        return start
    first = day if unit == "day" else date(day.year, day.month, 1)
    return datetime(first.year, first.month, first.day, tzinfo=tz)


def expected(
    events: list[dict[str, Any]], tz: ZoneInfo, unit: str, start: datetime, end: datetime,
    brand: str | None = None,
) -> dict[tuple[datetime, str | None], dict[str, Any]]:  # fmt: skip
    """The rows of the window, keyed by (bucket start, material): kg (exact, in Decimal
    grams first), unweighed quantities and rates, by docs/materials.md."""
    grams: dict[tuple[datetime, str | None], dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(FIELDS, Decimal(0))
    )
    unweighed: dict[tuple[datetime, str | None], int] = defaultdict(int)
    for e in events:
        ts = datetime.fromisoformat(e["ts"])
        if not start <= ts < end:
            continue
        if brand is not None and PRODUCTS.get(e["gtin"], {}).get("brand") != brand:
            continue
        what = declared(e["gtin"], ts)
        key = (bucket_of(ts, tz, unit, start), what.material if what else None)
        row = grams[key]
        if "weight_g" in e:
            g = Decimal(str(e["weight_g"]))
        elif what is not None and what.weight_g is not None:
            g = e["qty"] * what.weight_g
        else:
            unweighed[key] += e["qty"]
            g = Decimal(0)
        if e["type"] == "sold":
            row["placed_kg"] += g
            if what is not None:
                row["recycled_content_kg"] += g * what.recycled_pct / 100
                row["renewable_content_kg"] += g * what.renewable_pct / 100
                row["fibre_kg"] += g if what.fibre else 0
        elif e["type"] == "returned":
            row["collected_kg"] += g
        else:
            row["sorted_kg"] += g
            row[BY_OUTCOME[OUTCOMES[e["stream"]]]] += g
    rows = {}
    for key, sums in grams.items():
        row: dict[str, Any] = {
            f: float((g / 1000).quantize(Decimal("0.001"), ROUND_HALF_UP)) for f, g in sums.items()
        }
        row["unweighed_qty"] = unweighed[key]
        for name, (top, bottom) in RATES.items():
            row[name] = float(sums[top] / sums[bottom]) if sums[bottom] else None
        rows[key] = row
    return rows


@pytest.fixture
def world(db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str,
          make_worker: Any) -> list[dict[str, Any]]:  # fmt: skip
    """The registry through the API, the events over MQTT in two rounds around the
    re-registration of Water."""
    operator = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 'setup')}"}
    db.execute("INSERT INTO sites (id, name, kind) VALUES ('shop', 'Shop', 'shop'),"
               " ('sorting', 'Sorting', 'sorting')")  # fmt: skip
    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('pos-1', 'shop', 'pos'),"
               " ('rvm-1', 'shop', 'rvm'), ('sorter-1', 'sorting', 'sorter')")  # fmt: skip
    events = scenario(random.Random(20260328))
    make_worker()
    settings = Settings(database_url=db_url, mqtt_url=broker.url)
    with TestClient(create_app(settings)) as client:
        for id_, body in TYPES.items():
            put = client.put(f"/v1/packaging-types/{id_}", json=body, headers=operator)
            assert put.status_code == 201, put.text
        for gtin, body in PRODUCTS.items():
            put = client.put(f"/v1/products/{gtin}", json=body, headers=operator)
            assert put.status_code == 201, put.text
        put = client.put("/v1/sorting-streams/pet-clear", json=PET_CLEAR, headers=operator)
        assert put.status_code == 201, put.text

        # Round 1: everything before the switch but a few late sales of Water, and a few
        # sales of Water after it (counted before anyone declared the change).
        rng = random.Random(7)
        late = [e for e in events if e["gtin"] == WATER and e["type"] == "sold"
                and datetime.fromisoformat(e["ts"]) < SWITCH and rng.random() < 0.5]  # fmt: skip
        early = [e for e in events if e["gtin"] == WATER and e["type"] == "sold"
                 and datetime.fromisoformat(e["ts"]) >= SWITCH and rng.random() < 0.5]  # fmt: skip
        first = [
            e
            for e in events
            if (datetime.fromisoformat(e["ts"]) < SWITCH and e not in late) or e in early
        ]
        second = [e for e in events if e not in first]
        assert late and early and len(first) + len(second) == len(events)
        publish(broker, topic_root, first)
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= len(first), 60, "round 1")

        water = {**PRODUCTS[WATER], "recycled_content_pct": WATER_AFTER}
        put = client.put(
            f"/v1/products/{WATER}",
            params={"declared_from": (SWITCH + timedelta(minutes=7)).isoformat()},  # rounded down
            json=water,
            headers=operator,
        )
        assert put.status_code == 200, put.text
        history = client.get(f"/v1/products/{WATER}/declarations", headers=operator).json()
        assert [(d["declared_from"], d["recycled_content_pct"]) for d in history["items"]] == [
            ("2026-03-28T09:45:00Z", "80.00"),
            (None, "50.00"),
        ]
    publish(broker, topic_root, second)
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= len(events), 60, "round 2")
    return events


def publish(broker: Broker, topic_root: str, events: list[dict[str, Any]]) -> None:
    """Each event from the device of its type, 50 to a message."""
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_device[DEVICES[e["type"]]].append(e)
    messages = [
        (device, json.dumps({"events": batch[i : i + 50]}).encode())
        for device, batch in by_device.items()
        for i in range(0, len(batch), 50)
    ]
    publish_all(broker, topic_root, messages)


def answered(response: Any, tz: ZoneInfo) -> dict[tuple[datetime, str | None], dict[str, Any]]:
    assert response.status_code == 200, response.text
    rows = {}
    for r in response.json()["rows"]:
        start = datetime.fromisoformat(r.pop("bucket_start"))
        assert start.utcoffset() == start.astimezone(tz).utcoffset()
        rows[(start, r.pop("material"))] = r
    return rows


def assert_rows_equal(
    got: dict[tuple[datetime, str | None], dict[str, Any]],
    want: dict[tuple[datetime, str | None], dict[str, Any]],
) -> None:
    assert sorted(got, key=str) == sorted(want, key=str)
    for key, row in want.items():
        for field, value in row.items():
            if field in RATES and value is not None:
                assert got[key][field] == pytest.approx(value, rel=1e-9), (key, field)
            else:
                assert got[key][field] == value, (key, field)


@pytest.mark.parametrize("tz_name", ["Europe/Oslo", "UTC", "Asia/Kolkata"])
@pytest.mark.parametrize("unit", ["day", "month", "total"])
def test_material_figures_match_the_scenario(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker,
    tz_name: str, unit: str,
) -> None:  # fmt: skip
    tz = ZoneInfo(tz_name)
    start, end = datetime(2026, 3, 26, tzinfo=tz), datetime(2026, 4, 3, tzinfo=tz)
    key = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 't')}"}
    want = expected(world, tz, unit, start, end)
    assert {m for _, m in want} == {"PET", "aluminium", "fibre", "HDPE", None}
    assert any(row["unweighed_qty"] for row in want.values())
    # Day rollups in UTC, then rebuilt in Oslo: the day and the quarter-hour paths agree.
    for rollup_zone in ("UTC", "Europe/Oslo"):
        migrate(db_url, timezone=rollup_zone)
        with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
            response = client.get(
                "/v1/stats/materials",
                params={"from": "2026-03-26", "to": "2026-04-03", "bucket": unit, "tz": tz_name},
                headers=key,
            )
        assert_rows_equal(answered(response, tz), want)


def test_the_share_in_force_at_the_time_of_sale_counts(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker
) -> None:
    """Water's sales on both sides of the switch, to the quarter hour, from the rollups."""
    key = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 't')}"}
    sold = [e for e in world if e["gtin"] == WATER and e["type"] == "sold"]
    before = sum(e["qty"] for e in sold if datetime.fromisoformat(e["ts"]) < SWITCH)
    after = sum(e["qty"] for e in sold if datetime.fromisoformat(e["ts"]) >= SWITCH)
    assert before and after
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        response = client.get(
            "/v1/stats/materials",
            params={
                "from": "2026-03-26",
                "to": "2026-04-03",
                "bucket": "total",
                "tz": "UTC",
                "packaging_type": "pet-0.5l",
                "brand": "fjord",
            },
            headers=key,
        )
    (row,) = response.json()["rows"]
    cola = sum(e["qty"] for e in world if e["gtin"] == COLA and e["type"] == "sold")
    grams = Decimal(22) * (before * 50 + after * 80 + cola * 30) / 100
    assert row["recycled_content_kg"] == float(
        (grams / 1000).quantize(Decimal("0.001"), ROUND_HALF_UP)
    )
    assert row["placed_kg"] == float(Decimal(22) * (before + after + cola) / 1000)


def test_a_brand_sees_only_its_own_placed_on_market_side(
    world: list[dict[str, Any]], db: psycopg.Connection[Any], db_url: str, broker: Broker
) -> None:
    fjord = {"Authorization": f"Bearer {create_key(db, Role.BRAND, 'f', brand='fjord')}"}
    nordlys = {"Authorization": f"Bearer {create_key(db, Role.BRAND, 'n', brand='nordlys')}"}
    operator = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 'o')}"}
    tz = ZoneInfo("Europe/Oslo")
    start, end = datetime(2026, 3, 26, tzinfo=tz), datetime(2026, 4, 3, tzinfo=tz)
    params = {"from": "2026-03-26", "to": "2026-04-03", "bucket": "day", "tz": "Europe/Oslo"}
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        own = answered(client.get("/v1/stats/materials", params=params, headers=fjord), tz)
        placed = {
            key: {
                f: row[f]
                for f in (
                    "placed_kg",
                    "recycled_content_kg",
                    "renewable_content_kg",
                    "fibre_kg",
                    "recycled_content_share",
                    "renewable_content_share",
                    "fibre_share",
                )
            }
            for key, row in expected(
                [e for e in world if e["type"] == "sold"], tz, "day", start, end, brand="fjord"
            ).items()
        }
        # Only fjord's materials (PET and fibre), only sales, nothing of the scheme's flows.
        assert {m for _, m in own} == {"PET", "fibre"}
        assert_rows_equal({k: {f: r[f] for f in placed[k]} for k, r in own.items()}, placed)
        for row in own.values():
            for field in ("collected_kg", "sorted_kg", "sorted_recycling_kg", "collection_rate",
                          "material_recycling_rate", "reuse_share"):  # fmt: skip
                assert row[field] is None
        # Asking for another brand gives nothing, not their figures nor totals.
        other = client.get("/v1/stats/materials", params={**params, "brand": "nordlys"},
                           headers=fjord)  # fmt: skip
        assert other.status_code == 200 and other.json() == {"rows": []}
        theirs = answered(client.get("/v1/stats/materials", params=params, headers=nordlys), tz)
        assert {m for _, m in theirs} == {"aluminium", "HDPE"}
        # The operator sees fjord's flows when asking for fjord.
        full = answered(
            client.get(
                "/v1/stats/materials", params={**params, "brand": "fjord"}, headers=operator
            ),
            tz,
        )
        assert_rows_equal(full, expected(world, tz, "day", start, end, brand="fjord"))
        # Targets and another brand's declarations are not a brand's to see.
        assert client.get("/v1/stats/targets", headers=fjord).status_code == 403
        assert client.get(f"/v1/products/{PILS}/declarations", headers=fjord).status_code == 404
        assert client.get(f"/v1/products/{WATER}/declarations", headers=fjord).status_code == 200
