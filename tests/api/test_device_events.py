"""HTTP posting by devices and dead-letter replay: both go through the broker and the real
worker, so validation and dead-lettering are exactly those of MQTT."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from schemas.api_keys import Role, create_key
from tests.api.problem_assertions import assert_problem
from tests.conftest import wait_until
from tests.factories import count, event, seed_registry


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_device_posts_its_events_over_http(
    client: TestClient, db: psycopg.Connection[Any], make_worker: Any
) -> None:
    seed_registry(db, ["rvm-1", "rvm-2"])
    make_worker()
    key = create_key(db, Role.DEVICE, "rvm-1 key", device_id="rvm-1")
    events = [event("returned") for _ in range(3)]
    events[1]["ts"] = datetime.now(UTC).replace(tzinfo=None).isoformat()  # naive: bad
    response = client.post(
        "/v1/devices/rvm-1/events", content=json.dumps({"events": events}), headers=bearer(key)
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["valid_events"] == 2
    assert [(r["batch_index"], r["reason"]) for r in body["rejected"]] == [(1, "naive_timestamp")]
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 2, 30, "2 events")
    wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, 30, "dead letter")
    assert count(db, "SELECT count(*) FROM events WHERE device_id = 'rvm-1'") == 2

    assert_problem(
        client.post("/v1/devices/rvm-2/events", content=json.dumps(events[0]), headers=bearer(key)),
        403,
        "posts as device 'rvm-1' only",
    )
    operator = create_key(db, Role.OPERATOR, "op")
    assert_problem(
        client.post("/v1/devices/rvm-1/events", content=b"{}", headers=bearer(operator)),
        403,
        "role operator",
    )
    assert_problem(
        client.post("/v1/devices/rvm-1/events", content=b"x" * (256 * 1024 + 1),
                    headers=bearer(key)),
        413,
        "at most 262144",
    )  # fmt: skip


def test_dead_letters_are_listed_and_replayed_after_the_fix(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any], make_worker: Any
) -> None:
    seed_registry(db, [])
    make_worker()
    events = [event("sold") for _ in range(4)]
    response = client.post(
        "/v1/devices/rvm-new/events", content=json.dumps({"events": events}), headers=keys["admin"]
    )
    assert response.status_code == 202
    wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, 30, "dead letter")
    listed = client.get("/v1/dead-letters?pending=true", headers=keys["operator"]).json()
    (letter,) = listed["dead_letters"]
    assert (letter["reason"], letter["device_id"]) == ("unknown_device", "rvm-new")
    # Lists show a preview; the message itself is served per id.
    whole = client.get(f"/v1/dead-letters/{letter['id']}", headers=keys["operator"]).json()
    assert json.loads(whole["payload"]) == {"events": events}
    assert letter["payload_preview"] == whole["payload"][: len(letter["payload_preview"])]

    # Registering the device, then replaying, stores the events.
    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('rvm-new', 'shop-1', 'rvm')")
    replayed = client.post(
        "/v1/dead-letters/replay", json={"reason": "unknown_device"}, headers=keys["operator"]
    )
    assert replayed.json() == {"replayed": [letter["id"]]}
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 4, 30, "replayed events")
    assert client.get("/v1/dead-letters?pending=true", headers=keys["operator"]).json() == {
        "dead_letters": [],
        "next_before": None,
    }
    # Replaying again sends nothing: it was replayed already.
    again = client.post("/v1/dead-letters/replay", json={}, headers=keys["operator"])
    assert again.json() == {"replayed": []}
    assert_problem(client.get("/v1/dead-letters", headers=keys["fjord"]), 403, "role brand")


def test_year_zero_posted_over_http_is_clock_skew_and_the_next_event_is_stored(
    client: TestClient, db: psycopg.Connection[Any], make_worker: Any
) -> None:
    """The payload that once stopped every worker, posted as a device would."""
    seed_registry(db, ["rvm-1"])
    worker = make_worker()
    key = create_key(db, Role.DEVICE, "rvm-1 key", device_id="rvm-1")
    year_zero = {
        "event_id": "5f0c4a52-0000-4000-8000-00000000dead",
        "ts": "0001-01-01T00:00:00+14:00",
        "type": "returned",
        "gtin": "7310865004703",
    }
    response = client.post(
        "/v1/devices/rvm-1/events", content=json.dumps(year_zero), headers=bearer(key)
    )
    assert response.status_code == 202, response.text
    [rejected] = response.json()["rejected"]
    assert rejected["reason"] == "clock_skew"
    assert "before 2000-01-01T00:00:00Z" in rejected["detail"]
    good = event("returned")
    response = client.post(
        "/v1/devices/rvm-1/events", content=json.dumps(good), headers=bearer(key)
    )
    assert response.status_code == 202, response.text
    wait_until(
        lambda: count(db, "SELECT count(*) FROM events WHERE event_id = %s", good["event_id"]),
        30,
        "the good event",
    )
    assert db.execute("SELECT reason FROM dead_letters").fetchall() == [("clock_skew",)]
    worker.assert_running()
