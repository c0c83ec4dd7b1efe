"""`GET /v1/events`: newest first, complete and stable cursor paging, filters, scoping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.api.problem_assertions import assert_problem
from tests.factories import GTIN_COLA, GTIN_CRATE, seed_registry
from tests.storing import store

BASE = datetime(2026, 5, 1, 12, tzinfo=UTC)


def insert_events(
    db: psycopg.Connection[Any], rows: list[tuple[datetime, str, str, str]]
) -> list[str]:
    """(ts, type, gtin, device) rows straight into events; returns their ids."""
    ids = []
    for ts, type_, gtin, device in rows:
        event_id = str(uuid.uuid4())
        db.execute(
            "INSERT INTO events (event_id, ts, received_at, device_id, site_id, type, item_class,"
            " qty) VALUES (%s, %s, now(), %s, 'shop-1', %s, %s, 1)",
            (event_id, ts, device, type_, gtin.zfill(14)),
        )
        ids.append(event_id)
    return ids


def test_paging_is_complete_ordered_and_stable(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["rvm-1"])
    # Pairs of events share a timestamp, so the order must break ties by id.
    rows = [(BASE - timedelta(seconds=i // 2), "sold", GTIN_COLA, "rvm-1") for i in range(250)]
    ids = insert_events(db, rows)
    seen: list[dict[str, Any]] = []
    cursor = None
    for page in range(3):
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/events", params=params, headers=keys["operator"]).json()
        seen += body["events"]
        cursor = body["next_cursor"]
        if page == 0:
            # Newer events arriving meanwhile do not shift the pages being read.
            insert_events(db, [(BASE + timedelta(minutes=5), "sold", GTIN_COLA, "rvm-1")] * 3)
    assert cursor is None
    assert sorted(e["event_id"] for e in seen) == sorted(ids)
    order = [(e["ts"], e["event_id"]) for e in seen]
    assert order == sorted(order, reverse=True)


def test_filters_and_brand_scoping(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["rvm-1", "rvm-2"])  # both products belong to brand 'fjord'
    db.execute("UPDATE products SET brand = 'other' WHERE item_class = %s", (GTIN_CRATE.zfill(14),))
    insert_events(
        db,
        [
            (BASE, "sold", GTIN_COLA, "rvm-1"),
            (BASE + timedelta(hours=1), "returned", GTIN_COLA, "rvm-2"),
            (BASE + timedelta(hours=2), "returned", GTIN_CRATE, "rvm-1"),
        ],
    )

    def types(params: dict[str, Any], who: str = "operator") -> list[tuple[str, str]]:
        response = client.get("/v1/events", params=params, headers=keys[who])
        assert response.status_code == 200, response.text
        return [(e["type"], e["device_id"]) for e in response.json()["events"]]

    assert types({"device_id": "rvm-1"}) == [("returned", "rvm-1"), ("sold", "rvm-1")]
    assert types({"type": "sold"}) == [("sold", "rvm-1")]
    assert types({"gtin": GTIN_COLA}) == [("returned", "rvm-2"), ("sold", "rvm-1")]
    window = {
        "from": (BASE + timedelta(minutes=30)).isoformat(),
        "to": (BASE + timedelta(hours=2)).isoformat(),
    }
    assert types(window) == [("returned", "rvm-2")]
    # A brand key sees its products' events, without device and site: those are the
    # operator's (as in the anomalies and the portal), and it cannot filter by them.
    assert types({}, "fjord") == [("returned", None), ("sold", None)]
    assert types({"gtin": GTIN_CRATE}, "fjord") == []
    assert types({}, "other") == [("returned", None)]
    brand_events = client.get("/v1/events", headers=keys["fjord"]).json()["events"]
    assert {e["site_id"] for e in brand_events} == {None}
    for where in ({"device_id": "rvm-1"}, {"site_id": "shop-1"}):
        refused = client.get("/v1/events", params=where, headers=keys["fjord"])
        assert_problem(refused, 403, "operator's")


def test_bad_event_queries(client: TestClient, keys: dict[str, Any]) -> None:
    headers = keys["operator"]
    assert_problem(client.get("/v1/events?cursor=garbage", headers=headers), 422, "cursor")
    assert_problem(client.get("/v1/events?limit=0", headers=headers), 422, "limit")
    assert_problem(client.get("/v1/events?gtin=12345678", headers=headers), 422, "check digit")
    assert_problem(client.get("/v1/events?type=stolen", headers=headers), 422, "type")
    assert_problem(
        client.get("/v1/events", params={"from": "2026-05-01T10:00:00"}, headers=headers),
        422,
        "from",
    )
    assert_problem(
        client.get(
            "/v1/events",
            params={"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"},
            headers=headers,
        ),
        422,
        "from must be before to",
    )


def test_a_sorted_event_shows_its_stream_and_measured_weight(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["sorter-1"])
    store(db, "sorter-1", [
        {"event_id": str(uuid.uuid4()), "ts": BASE.isoformat(), "type": "sorted",
         "gtin": GTIN_COLA, "qty": 40, "stream": "PET", "weight_g": 905.25},
    ])  # fmt: skip
    (event,) = client.get("/v1/events", headers=keys["operator"]).json()["events"]
    assert (event["qty"], event["stream"], event["weight_g"]) == (40, "PET", 905.25)
