"""Counts of GTINs that are registered, or re-assigned to another packaging type or brand,
after their events were stored: the day rollups must follow the product, also while the
worker is storing more of its events at the same moment."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
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

GTINS = [with_check_digit(f"70380100{n:04d}") for n in range(4)]
TYPES = ("pet-0.5l", "can-0.33l")
BRANDS = ("fjord", "nordlys")
DEVICES = {"rvm-a": "shop-a", "rvm-b": "shop-b"}
START = datetime(2026, 5, 4, tzinfo=UTC)
# Whole UTC days (the test database's rollup zone: day rollups) and Oslo days (15-minute
# rollup): both paths must agree with the scenario.
WINDOWS = {
    "UTC": {"from": "2026-05-03", "to": "2026-05-10", "tz": "UTC"},
    "Europe/Oslo": {"from": "2026-05-03", "to": "2026-05-10", "tz": "Europe/Oslo"},
}


def scenario(rng: random.Random, n: int) -> list[dict[str, Any]]:
    events = []
    for _ in range(n):
        kind = rng.choice(["sold", "returned", "rejected"])
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "ts": (START + timedelta(seconds=rng.randint(0, 5 * 86400))).isoformat(),
                "type": kind,
                "gtin": rng.choice(GTINS),
                "qty": rng.randint(1, 4) if kind == "sold" else 1,
                "_device": rng.choice(list(DEVICES)),
                **({"reason": "damaged"} if kind == "rejected" else {}),
            }
        )
    return events


def expected(
    events: list[dict[str, Any]],
    mapping: dict[str, tuple[str, str] | None],
    tz: ZoneInfo,
    site: str | None = None,
) -> list[tuple[str, str | None, int, int, int]]:
    """(local day, packaging type, sold, returned, rejected) under the given mapping."""
    sums: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])
    for e in events:
        if site is not None and DEVICES[e["_device"]] != site:
            continue
        product = mapping[e["gtin"]]
        day = datetime.fromisoformat(e["ts"]).astimezone(tz).date().isoformat()
        column = ("sold", "returned", "rejected").index(e["type"])
        sums[(day, product[0] if product else None)][column] += e["qty"]
    return sorted(((d, p, *v) for (d, p), v in sums.items()), key=lambda r: (r[0], r[1] or "~"))  # type: ignore[arg-type]


def observed(client: TestClient, auth: dict[str, str], tz: str, site: str | None = None) -> Any:
    params = {**WINDOWS[tz], "bucket": "day", **({"site_id": site} if site else {})}
    response = client.get("/v1/stats/return-rates", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return [
        (
            datetime.fromisoformat(r["bucket_start"]).date().isoformat(),
            r["packaging_type"],
            r["sold"],
            r["returned"],
            r["rejected"],
        )
        for r in response.json()["rows"]
    ]


def check_all(
    client: TestClient,
    auth: dict[str, str],
    events: list[dict[str, Any]],
    mapping: dict[str, tuple[str, str] | None],
) -> None:
    for tz in WINDOWS:
        assert observed(client, auth, tz) == expected(events, mapping, ZoneInfo(tz)), tz
        for site in ("shop-a", "shop-b"):
            got = observed(client, auth, tz, site)
            assert got == expected(events, mapping, ZoneInfo(tz), site), (tz, site)


@pytest.fixture
def registry(db: psycopg.Connection[Any]) -> None:
    for packaging in TYPES:
        db.execute(
            "INSERT INTO packaging_types (id, name, material) VALUES (%s, %s, 'PET')",
            (packaging, packaging),
        )
    for device, site in DEVICES.items():
        db.execute("INSERT INTO sites (id, name, kind) VALUES (%s, %s, 'shop')", (site, site))
        db.execute("INSERT INTO devices (id, site_id, kind) VALUES (%s, %s, 'rvm')", (device, site))


def messages(events: list[dict[str, Any]], size: int) -> list[tuple[str, bytes]]:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_device[e["_device"]].append({k: v for k, v in e.items() if k != "_device"})
    return [
        (device, json.dumps({"events": batch[i : i + size]}).encode())
        for device, batch in by_device.items()
        for i in range(0, len(batch), size)
    ]


def put_product(
    client: TestClient, auth: dict[str, str], gtin: str, product: tuple[str, str]
) -> None:
    body = {"packaging_type": product[0], "brand": product[1], "name": f"Product {gtin}"}
    response = client.put(f"/v1/products/{gtin}", json=body, headers=auth)
    assert response.status_code in (200, 201), response.text


def test_counts_follow_a_product_registered_after_its_events(
    registry: None, db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str,
    make_worker: Any,
) -> None:  # fmt: skip
    events = scenario(random.Random(7), 600)
    make_worker()
    publish_all(broker, topic_root, messages(events, 50))
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= len(events), 60, "events")
    auth = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 't')}"}
    mapping: dict[str, tuple[str, str] | None] = dict.fromkeys(GTINS)
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:
        # Nothing registered yet: everything is counted under packaging type null.
        check_all(client, auth, events, mapping)
        mapping[GTINS[0]] = (TYPES[0], BRANDS[0])
        put_product(client, auth, GTINS[0], (TYPES[0], BRANDS[0]))
        check_all(client, auth, events, mapping)
        # Re-assigned to the other type, and the same upsert again (a no-op).
        for _ in range(2):
            mapping[GTINS[0]] = (TYPES[1], BRANDS[0])
            put_product(client, auth, GTINS[0], (TYPES[1], BRANDS[0]))
            check_all(client, auth, events, mapping)
        for gtin in GTINS[1:]:
            mapping[gtin] = (TYPES[0], BRANDS[1])
            put_product(client, auth, gtin, (TYPES[0], BRANDS[1]))
        check_all(client, auth, events, mapping)
        # A brand key sees exactly the GTINs of its brand, after the moves too.
        brand_key = create_key(db, Role.BRAND, "b", brand=BRANDS[1])
        mine = {g: p if p and p[1] == BRANDS[1] else None for g, p in mapping.items()}
        only_mine = [e for e in events if mine[e["gtin"]] is not None]
        got = observed(client, {"Authorization": f"Bearer {brand_key}"}, "UTC")
        assert got == expected(only_mine, mine, ZoneInfo("UTC"))
    # A day that lost all its counts to the move has no row left under the old key.
    assert count(db, "SELECT count(*) FROM return_counts_daily WHERE packaging_type IS NULL") == 0


def test_registering_products_while_the_worker_counts_their_events_loses_nothing(
    registry: None, db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str,
    make_worker: Any,
) -> None:  # fmt: skip
    events = scenario(random.Random(11), 4000)
    make_worker()
    auth = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 't')}"}
    rng = random.Random(3)
    final: dict[str, tuple[str, str] | None] = dict.fromkeys(GTINS)
    done = threading.Event()
    puts = 0
    with TestClient(create_app(Settings(database_url=db_url, mqtt_url=broker.url))) as client:

        def reassign() -> None:
            nonlocal puts
            while not done.is_set():
                gtin = rng.choice(GTINS)
                product = (rng.choice(TYPES), rng.choice(BRANDS))
                put_product(client, auth, gtin, product)
                final[gtin] = product
                puts += 1

        thread = threading.Thread(target=reassign)
        thread.start()
        try:
            # In groups, each followed by re-assignments, so products change all along
            # the ingest however fast this machine stores events.
            pending = messages(events, 10)
            for start in range(0, len(pending), 20):
                publish_all(broker, topic_root, pending[start : start + 20])
                before = puts
                wait_until(lambda: puts >= before + 2, 30, "products re-assigned")  # noqa: B023
            wait_until(
                lambda: count(db, "SELECT count(*) FROM events") >= len(events), 90, "events"
            )
        finally:
            done.set()
            thread.join(30)
        check_all(client, auth, events, final)
