"""`GET /v1/items/{gtin}/{serial}`: status, trips and history of one item, brand-scoped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.api.problem_assertions import assert_problem
from tests.factories import GTIN_CRATE, event, seed_registry
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

    assert_problem(client.get(f"/v1/items/{GTIN_CRATE}/C-1", headers=keys["other"]), 404, "no item")
    assert_problem(client.get(f"/v1/items/{GTIN_CRATE}/C-2", headers=keys["fjord"]), 404, "no item")
    assert_problem(
        client.get(f"/v1/items/{GTIN_CRATE}/bad%20serial", headers=keys["fjord"]), 422, "serial"
    )
