"""`GET /v1/items/{gtin}/{serial}`: status, trips and history of one item, brand-scoped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.problem_assertions import assert_problem
from tests.factories import GTIN_CRATE, event, register_asset_type, seed_registry
from tests.storing import store

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_item_status_trips_and_history(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["rvm-1"])  # the crate belongs to brand 'fjord'
    history = ["filled", "sold", "returned", "returned", "washed", "filled", "sold", "returned",
               "filled", "sold"]  # fmt: skip
    store(
        db,
        "rvm-1",
        [event(kind, gtin=GTIN_CRATE, serial="C-1", ts=T0 + timedelta(days=day))
         for day, kind in enumerate(history)],
    )  # fmt: skip
    response = client.get(f"/v1/items/{GTIN_CRATE}/C-1", headers=keys["fjord"])
    assert response.status_code == 200, response.text
    item = response.json()
    # Two trips: the second `returned` in a row is a duplicate, not a trip.
    assert (item["trips"], item["status"], item["packaging_type"]) == (2, "sold", "crate-24")
    assert [e["type"] for e in item["events"]] == list(reversed(history))
    assert item["target_trips"] == 50 and item["reusable"] is True
    # Device and site are the operator's: the brand's answer has neither, the operator's both.
    assert {(e["device_id"], e["site_id"]) for e in item["events"]} == {(None, None)}
    operator = client.get(f"/v1/items/{GTIN_CRATE}/C-1", headers=keys["operator"]).json()
    assert {(e["device_id"], e["site_id"]) for e in operator["events"]} == {("rvm-1", "shop-1")}

    assert_problem(client.get(f"/v1/items/{GTIN_CRATE}/C-1", headers=keys["other"]), 404, "no item")
    assert_problem(client.get(f"/v1/items/{GTIN_CRATE}/C-2", headers=keys["fjord"]), 404, "no item")
    assert_problem(
        client.get(f"/v1/items/{GTIN_CRATE}/bad%20serial", headers=keys["fjord"]), 422, "serial"
    )


# -- returnable assets keyed by GRAI ------------------------------------------------------

# The crate product's 14 digits, also registered as a GRAI asset type: the asset
# ASSET_TYPE + "C-1" and the GTIN item (GTIN_CRATE, "C-1") are two different crates.
ASSET_TYPE = GTIN_CRATE.zfill(14)
ASSET_HISTORY = ["filled", "sold", "returned", "returned", "washed", "filled", "sold",
                 "returned", "filled"]  # fmt: skip
ASSET_TRIPS = 2  # the second `returned` in a row is a duplicate, not a trip
PRODUCT_HISTORY = ["sold", "returned", "sold"]


def scan(kind: str, code: str, day: int) -> dict[str, Any]:
    """An event as a device sends a scanned Digital Link: `code` instead of a GTIN."""
    made = event(kind, ts=T0 + timedelta(days=day), code=code)
    del made["gtin"]
    return made


@pytest.fixture
def asset(db: psycopg.Connection[Any]) -> str:
    """A pool crate of brand 'fjord' scanned through ASSET_HISTORY, and the GTIN item with
    the same digits and serial through PRODUCT_HISTORY; returns the asset's whole GRAI."""
    seed_registry(db, ["rvm-1"])
    register_asset_type(db, ASSET_TYPE)
    grai = ASSET_TYPE + "C-1"
    store(db, "rvm-1", [scan(k, f"https://id.example.no/8003/{grai}", d)
                        for d, k in enumerate(ASSET_HISTORY)])  # fmt: skip
    store(db, "rvm-1", [event(k, gtin=GTIN_CRATE, serial="C-1", ts=T0 + timedelta(days=d))
                        for d, k in enumerate(PRODUCT_HISTORY)])  # fmt: skip
    return grai


def test_an_asset_is_an_item_named_by_its_grai(
    client: TestClient, keys: dict[str, Any], asset: str
) -> None:
    response = client.get(f"/v1/items/8003/{asset}", headers=keys["fjord"])
    assert response.status_code == 200, response.text
    item = response.json()
    assert (item["gtin"], item["grai"], item["serial"]) == (None, asset, "C-1")
    assert (item["product"], item["packaging_type"], item["brand"]) == (
        "Pool crate",
        "crate-24",
        "fjord",
    )
    assert (item["trips"], item["status"]) == (ASSET_TRIPS, ASSET_HISTORY[-1])
    assert [e["type"] for e in item["events"]] == list(reversed(ASSET_HISTORY))
    # The GTIN item with the same digits and serial keeps its own history.
    product = client.get(f"/v1/items/{GTIN_CRATE}/C-1", headers=keys["operator"]).json()
    assert (product["gtin"], product["grai"], product["product"]) == (ASSET_TYPE, None, "Crate")
    assert [e["type"] for e in product["events"]] == list(reversed(PRODUCT_HISTORY))
    assert product["trips"] == 1


def test_asset_lookups_that_name_no_asset_are_refused(
    client: TestClient, keys: dict[str, Any], asset: str
) -> None:
    # Without a serial a GRAI names the asset type, not one asset.
    assert_problem(
        client.get(f"/v1/items/8003/{ASSET_TYPE}", headers=keys["fjord"]), 422, "no serial"
    )
    wrong = ASSET_TYPE[:13] + str((int(ASSET_TYPE[13]) + 1) % 10)
    assert_problem(
        client.get(f"/v1/items/8003/{wrong}C-1", headers=keys["fjord"]),
        422,
        f"check digit should be {ASSET_TYPE[13]}",
    )
    assert_problem(
        client.get(f"/v1/items/8003/{ASSET_TYPE}{'S' * 17}", headers=keys["fjord"]), 422, "grai"
    )
    # A valid GRAI of no asset: 404, naming the GRAI and not the stored item class.
    unknown = client.get(f"/v1/items/8003/{ASSET_TYPE}C-2", headers=keys["fjord"])
    assert_problem(unknown, 404, f"no asset {ASSET_TYPE}C-2")
    assert "8003" + ASSET_TYPE not in unknown.text
    # Another brand's asset is 404 too, as if it did not exist.
    theirs = client.get(f"/v1/items/8003/{asset}", headers=keys["other"])
    assert_problem(theirs, 404, f"no asset {asset}")
    assert "Pool crate" not in theirs.text
