"""The circularity registry (content declarations, sorting streams, targets) and
`GET /v1/stats/targets`: clear errors for impossible figures, and target values, trends
and trajectories equal to what docs/materials.md defines, computed here from a year of
known traffic."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.problem_assertions import assert_problem
from tests.factories import count, with_check_digit
from tests.storing import store

PET = {"name": "PET 0.5 l", "material": "PET", "weight_g": 20, "recycled_content_pct": 25}
CAN = {"name": "Can", "material": "aluminium", "weight_g": 10, "recycled_content_pct": 70}
BOTTLE = with_check_digit("703801000123")
CAN_GTIN = with_check_digit("703801000234")


def test_content_shares_beyond_the_whole_package_are_refused(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    operator = keys["operator"]
    over = {**PET, "recycled_content_pct": 60, "renewable_content_pct": 50}
    assert_problem(
        client.put("/v1/packaging-types/pet", json=over, headers=operator), 422, "exceed 100"
    )
    negative = {**PET, "recycled_content_pct": -1}
    assert_problem(
        client.put("/v1/packaging-types/pet", json=negative, headers=operator),
        422,
        "recycled_content_pct",
    )
    bio = {**PET, "renewable_content_pct": 70}
    assert client.put("/v1/packaging-types/pet", json=bio, headers=operator).status_code == 201
    # The product's own recycled share and its type's renewable share add up to 110 %.
    product = {"packaging_type": "pet", "brand": "fjord", "name": "Cola",
               "recycled_content_pct": 40}  # fmt: skip
    assert_problem(
        client.put(f"/v1/products/{BOTTLE}", json=product, headers=operator),
        422,
        "together exceed 100",
    )
    assert count(db, "SELECT count(*) FROM products") == 0
    assert count(db, "SELECT count(*) FROM material_declarations") == 0
    # A type change that would break an existing product's figures is refused too.
    fine = {**product, "recycled_content_pct": 28}
    assert client.put(f"/v1/products/{BOTTLE}", json=fine, headers=operator).status_code == 201
    greener = {**PET, "renewable_content_pct": 75}  # 100 % for the type, 103 % for Cola
    assert_problem(
        client.put("/v1/packaging-types/pet", json=greener, headers=operator),
        422,
        "together exceed 100",
    )
    got = client.get("/v1/packaging-types/pet", headers=operator).json()
    assert got["renewable_content_pct"] == "70.00"


def test_declarations_keep_their_history_and_a_first_one_covers_all_time(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    operator = keys["operator"]
    client.put("/v1/packaging-types/pet", json=PET, headers=operator)
    product = {"packaging_type": "pet", "brand": "fjord", "name": "Cola"}
    assert client.put(f"/v1/products/{BOTTLE}", json=product, headers=operator).status_code == 201
    # The same figures again declare nothing new; a new share counts from the next
    # quarter hour; a back-dated one replaces what was declared from then on.
    client.put(f"/v1/products/{BOTTLE}", json=product, headers=operator)
    before = datetime.now(UTC)
    client.put(f"/v1/products/{BOTTLE}", json={**product, "recycled_content_pct": 35},
               headers=operator)  # fmt: skip
    history = client.get(f"/v1/products/{BOTTLE}/declarations", headers=keys["fjord"]).json()
    (newer, first) = history["items"]
    assert first["declared_from"] is None and first["recycled_content_pct"] == "25.00"
    starts = datetime.fromisoformat(newer["declared_from"])
    assert newer["recycled_content_pct"] == "35.00"
    assert before < starts <= before + timedelta(minutes=15)
    assert starts.minute % 15 == 0 and starts.second == 0
    client.put(
        f"/v1/products/{BOTTLE}",
        params={"declared_from": "2026-01-01T00:10:00+01:00"},
        json={**product, "recycled_content_pct": 40},
        headers=operator,
    )
    history = client.get(f"/v1/products/{BOTTLE}/declarations", headers=operator).json()
    assert [(d["declared_from"], d["recycled_content_pct"]) for d in history["items"]] == [
        ("2025-12-31T23:00:00Z", "40.00"),
        (None, "25.00"),
    ]
    assert client.get(f"/v1/products/{BOTTLE}/declarations", headers=keys["other"]).status_code == (
        404
    )
    assert_problem(
        client.put(
            f"/v1/products/{BOTTLE}",
            params={"declared_from": "2026-01-01"},
            json=product,
            headers=operator,
        ),
        422,
        "declared_from",
    )


def test_sorting_streams_are_registry_data(client: TestClient, keys: dict[str, Any]) -> None:
    operator = keys["operator"]
    seeded = client.get("/v1/sorting-streams", headers=operator).json()["items"]
    assert {s["stream"]: s["outcome"] for s in seeded} == {
        "reuse": "reuse", "PET": "material_recycling", "HDPE": "material_recycling",
        "PP": "material_recycling", "glass": "material_recycling",
        "aluminium": "material_recycling", "steel": "material_recycling",
        "fibre": "material_recycling", "energy": "energy_recovery", "residual": "residual",
    }  # fmt: skip
    body = {"outcome": "energy_recovery", "material": "PET", "name": "Burnt PET"}
    assert_problem(
        client.put("/v1/sorting-streams/pet-burn", json=body, headers=operator),
        422,
        "only meaningful with outcome material_recycling",
    )
    body = {"outcome": "material_recycling", "material": "PET", "name": "Clear PET"}
    made = client.put("/v1/sorting-streams/pet-clear", json=body, headers=operator)
    assert made.status_code == 201 and made.json() == {"stream": "pet-clear", **body}
    assert client.get("/v1/sorting-streams/pet-clear", headers=operator).json()["name"] == (
        "Clear PET"
    )
    assert_problem(client.get("/v1/sorting-streams/bale-7", headers=operator), 404, "unmapped")
    assert_problem(
        client.put("/v1/sorting-streams/a%20b", json=body, headers=operator), 422, "stream"
    )
    assert client.put("/v1/sorting-streams/x", json=body, headers=keys["fjord"]).status_code == 403


def test_targets_are_registry_data_with_clear_errors(
    client: TestClient, keys: dict[str, Any]
) -> None:
    operator = keys["operator"]
    seeded = client.get("/v1/targets", headers=operator).json()["items"]
    assert {t["id"]: (t["metric"], t["value"], t["year"]) for t in seeded} == {
        "no-plastic-recycling-2030": ("material_recycling_rate", "0.55000", 2030),
        "no-fibre-replacement-2025": ("fibre_share", "0.05000", 2025),
        "no-recycled-renewable-plastic-2030": ("recycled_or_renewable_share", "0.60000", 2030),
        "eu-ppwr-collection-2029": ("collection_rate", "0.90000", 2029),
    }
    target = {"name": "Glass", "metric": "collection_rate", "materials": ["glass"],
              "value": 0.95, "year": 2030, "source": "our board"}  # fmt: skip
    assert client.put("/v1/targets/glass-2030", json=target, headers=operator).status_code == 201
    for bad, words in (
        ({"value": 55}, "value"),
        ({"metric": "happiness"}, "metric"),
        ({"materials": ["wood"]}, "materials"),
        ({"baseline_value": 0.2}, "baseline_value and baseline_year together"),
    ):
        assert_problem(
            client.put("/v1/targets/glass-2030", json={**target, **bad}, headers=operator),
            422,
            words,
        )
    assert client.delete("/v1/targets/glass-2030", headers=operator).status_code == 204
    assert client.get("/v1/targets/glass-2030", headers=operator).status_code == 404
    assert client.get("/v1/targets", headers=keys["fjord"]).status_code == 403


def _month_starts(today: date, months: int) -> list[date]:
    starts = []
    year, month = today.year, today.month
    for _ in range(months):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        starts.append(date(year, month, 1))
    return starts[::-1]


def test_targets_report_latest_value_trend_and_trajectory(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    """A year of PET and cans: each month k sells 100 bottles (20 g) and 50 cans (10 g);
    returns grow by 3 bottles a month, sorting to PET recycling by 2."""
    operator = keys["operator"]
    client.put("/v1/packaging-types/pet", json=PET, headers=operator)
    client.put("/v1/packaging-types/can", json=CAN, headers=operator)
    for gtin, kind in ((BOTTLE, "pet"), (CAN_GTIN, "can")):
        body = {"packaging_type": kind, "brand": "fjord", "name": kind}
        assert client.put(f"/v1/products/{gtin}", json=body, headers=operator).status_code == 201
    db.execute("INSERT INTO sites (id, name, kind) VALUES ('s', 'S', 'shop')")
    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('d', 's', 'rvm')")
    today = datetime.now(UTC).date()
    months = _month_starts(today, 12)
    collected, placed, sorted_pet, placed_pet = [], [], [], []

    def event(ts: str, kind: str, gtin: str, qty: int, **extra: Any) -> dict[str, Any]:
        return {"event_id": str(uuid.uuid4()), "ts": ts, "type": kind, "gtin": gtin, "qty": qty,
                **extra}  # fmt: skip

    for k, month in enumerate(months):
        ts = datetime(month.year, month.month, 15, 12, tzinfo=UTC).isoformat()
        store(db, "d", [
            event(ts, "sold", BOTTLE, 100), event(ts, "sold", CAN_GTIN, 50),
            event(ts, "returned", BOTTLE, 50 + 3 * k), event(ts, "returned", CAN_GTIN, 48),
            event(ts, "sorted", BOTTLE, 40 + 2 * k, stream="PET"),
        ])  # fmt: skip
        placed.append(100 * 20 + 50 * 10)
        placed_pet.append(100 * 20)
        collected.append((50 + 3 * k) * 20 + 48 * 10)
        sorted_pet.append((40 + 2 * k) * 20)
    # Outside the 12 months: this month (not whole yet) and 13 months ago.
    first_month = datetime(months[0].year, months[0].month, 1, tzinfo=UTC)
    for when in (datetime(today.year, today.month, 1, 0, 5, tzinfo=UTC),
                 first_month - timedelta(days=20)):  # fmt: skip
        store(db, "d", [event(when.isoformat(), "sold", BOTTLE, 999)])

    rows = {t["id"]: t for t in client.get("/v1/stats/targets", headers=operator).json()["rows"]}

    collection = rows["eu-ppwr-collection-2029"]
    assert collection["latest"]["numerator_kg"] == sum(collected) / 1000
    assert collection["latest"]["denominator_kg"] == sum(placed) / 1000
    assert collection["latest"]["value"] == pytest.approx(sum(collected) / sum(placed))
    monthly = [c / p for c, p in zip(collected, placed, strict=True)]
    assert [t["month"] for t in collection["trend"]] == [m.isoformat() for m in months]
    assert [t["value"] for t in collection["trend"]] == pytest.approx(monthly)
    slope = 12 * statistics.linear_regression(range(12), monthly).slope
    assert collection["slope_per_year"] == pytest.approx(slope)
    start = datetime(months[0].year, months[0].month, 1, tzinfo=UTC)
    end = datetime(today.year, today.month, 1, tzinfo=UTC)
    years = (datetime(2030, 1, 1, tzinfo=UTC) - (start + (end - start) / 2)).days / 365.25
    projected = sum(collected) / sum(placed) + slope * years
    assert collection["projected"] == pytest.approx(projected, abs=1e-3)
    assert collection["on_track"] is (projected >= 0.9)

    recycling = rows["no-plastic-recycling-2030"]  # PET, HDPE, PP only: no cans
    assert recycling["latest"]["value"] == pytest.approx(sum(sorted_pet) / sum(placed_pet))
    content = rows["no-recycled-renewable-plastic-2030"]
    assert content["latest"]["value"] == pytest.approx(0.25)
    assert content["slope_per_year"] == pytest.approx(0, abs=1e-12)
    assert content["on_track"] is False and content["projected"] == pytest.approx(0.25)
    fibre = rows["no-fibre-replacement-2025"]  # its year is over: judged on the latest value
    assert fibre["latest"]["value"] == 0 and fibre["on_track"] is False


def test_events_counted_before_their_product_is_registered_take_its_first_declaration(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    db.execute("INSERT INTO sites (id, name, kind) VALUES ('s', 'S', 'shop')")
    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('d', 's', 'pos')")
    ts = "2026-02-10T10:00:00+01:00"
    store(db, "d", [{"event_id": str(uuid.uuid4()), "ts": ts, "type": "sold", "gtin": BOTTLE,
                     "qty": 10}])  # fmt: skip
    params = {"from": "2026-02-01", "to": "2026-03-01", "bucket": "total", "tz": "UTC"}
    (unknown,) = client.get("/v1/stats/materials", params=params, headers=keys["operator"]).json()[
        "rows"
    ]
    assert (unknown["material"], unknown["placed_kg"], unknown["unweighed_qty"]) == (None, 0, 10)

    client.put("/v1/packaging-types/pet", json=PET, headers=keys["operator"])
    body = {"packaging_type": "pet", "brand": "fjord", "name": "Cola"}
    assert client.put(
        f"/v1/products/{BOTTLE}", json=body, headers=keys["operator"]
    ).status_code == (201)
    (known,) = client.get("/v1/stats/materials", params=params, headers=keys["fjord"]).json()[
        "rows"
    ]
    assert (known["material"], known["placed_kg"], known["recycled_content_kg"]) == (
        "PET", 0.2, 0.05,
    )  # fmt: skip


def test_a_product_moved_to_another_brand_and_type_takes_its_material_flows_along(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    """Read from each rollup: days of the rollup zone, UTC hours, quarter hours (:30 zone)."""
    db.execute("INSERT INTO sites (id, name, kind) VALUES ('s', 'S', 'shop')")
    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('d', 's', 'pos')")
    operator = keys["operator"]
    for type_id, body in (("pet", PET), ("can", CAN)):
        client.put(f"/v1/packaging-types/{type_id}", json=body, headers=operator)
    product = {"packaging_type": "pet", "brand": "fjord", "name": "Cola"}
    assert client.put(f"/v1/products/{BOTTLE}", json=product, headers=operator).status_code == 201
    store(db, "d", [{"event_id": str(uuid.uuid4()), "ts": "2026-02-10T10:00:00+01:00",
                     "type": "sold", "gtin": BOTTLE, "qty": 10}])  # fmt: skip

    def placed(zone: str, **only: str) -> list[tuple[str | None, float]]:
        params = {"from": "2026-02-01", "to": "2026-03-01", "bucket": "total", "tz": zone}
        response = client.get("/v1/stats/materials", params=params | only, headers=operator)
        rows = response.json()["rows"]
        return [(row["material"], row["placed_kg"]) for row in rows]

    zones = ("Europe/Oslo", "UTC", "Asia/Kolkata")
    for zone in zones:
        assert placed(zone, brand="fjord") == placed(zone, packaging_type="pet") == [("PET", 0.2)]
    moved = {"packaging_type": "can", "brand": "nordlys", "name": "Cola"}
    assert client.put(f"/v1/products/{BOTTLE}", json=moved, headers=operator).status_code == 200
    for zone in zones:
        # Sold in a PET bottle: still PET, now under the product's brand and type.
        now_placed = placed(zone, brand="nordlys")
        assert now_placed == placed(zone, packaging_type="can") == [("PET", 0.2)], zone
        assert placed(zone, brand="fjord") == placed(zone, packaging_type="pet") == [], zone
        assert placed(zone) == [("PET", 0.2)], zone
