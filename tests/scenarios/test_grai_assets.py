"""Returnable assets keyed by GRAI (AI 8003), end to end: a pooling company registers a crate
type, prints labels, the QR codes read back (by decoders the project does not write) as
/8003/ Digital Links, RVMs and fillers send those codes over MQTT, and the trips show in
/v1/stats/reuse, in the item record and on the public page. The asset type has the same 14
digits as a product's GTIN: the two stay apart."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import ROOT, Broker, publish_all, wait_until
from tests.factories import (
    GTIN_CRATE,
    assert_item_loops,
    count,
    register_asset_type,
    reuse_by_spec,
    scans,
    seed_registry,
)
from tests.qr import rendered_pages, zxing_decode

pytestmark = pytest.mark.slow

BASE = "https://id.example.no"
# A GTIN-14 that starts with 0 has a GRAI asset type's shape: the same digits name the
# product 'Crate' (GTIN) and the pool's crate type (GRAI) below.
ASSET_TYPE = GTIN_CRATE.zfill(14)
POOL_TYPE = {"name": "Pool crate", "material": "PP", "reusable": True, "target_trips": 3}
# Trips each labelled crate makes, in label order; crate 3 is scanned twice on one return.
PLANNED_TRIPS = [0, 1, 2, 3, 4, 5]
DOUBLE_SCANNED = 3


def scan_kinds(trips: int, double_scan: bool) -> list[str]:
    kinds = []
    for trip in range(trips):
        kinds += ["filled", "sold", "returned"]
        if double_scan and trip == 0:
            kinds.append("returned")  # not a trip: no fill or sale since the last return
    return kinds


def test_grai_labels_scanned_over_mqtt_make_trips_in_the_statistics(
    db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str,
    make_worker: Any,
) -> None:  # fmt: skip
    seed_registry(db, ["rvm-1"])
    operator = {"Authorization": f"Bearer {create_key(db, Role.OPERATOR, 'o')}"}
    pool = {"Authorization": f"Bearer {create_key(db, Role.BRAND, 'p', brand='fjord')}"}
    settings = Settings(
        database_url=db_url, mqtt_url=broker.url, topic_root=topic_root, public_base_url=BASE
    )
    with TestClient(create_app(settings)) as client:
        put = client.put("/v1/packaging-types/pool-crate", json=POOL_TYPE, headers=operator)
        assert put.status_code == 201, put.text
        asset_type = {"packaging_type": "pool-crate", "brand": "fjord", "name": "Pool crate"}
        put = client.put(f"/v1/asset-types/{ASSET_TYPE}", json=asset_type, headers=pool)
        assert put.status_code == 201, put.text
        assert client.get(f"/v1/products/{ASSET_TYPE}", headers=pool).json()["name"] == "Crate"

        made = client.post(
            "/v1/labels", json={"grai": ASSET_TYPE, "count": len(PLANNED_TRIPS)}, headers=pool
        )
        assert made.status_code == 201, made.text
        items = made.json()["items"]
        urls = [item["url"] for item in items]
        assert urls == [f"{BASE}/8003/{ASSET_TYPE}{item['serial']}" for item in items]
        (page,) = rendered_pages(client.get(made.json()["download"], headers=pool).content)
        scanned = zxing_decode(page)
        assert sorted(scanned) == sorted(urls)
        one = client.get(f"/v1/items/8003/{ASSET_TYPE}{items[0]['serial']}/qr.png", headers=pool)
        assert zxing_decode(Image.open(io.BytesIO(one.content))) == [urls[0]]

        # Fillers, shops and RVMs send what they scanned: the codes as read from the sheet.
        start = datetime.now(UTC) - timedelta(minutes=30)
        kinds_by_url = {
            url: scan_kinds(trips, i == DOUBLE_SCANNED)
            for i, (url, trips) in enumerate(zip(urls, PLANNED_TRIPS, strict=True))
        }
        events = [
            {"event_id": str(uuid.uuid4()), "ts": (start + timedelta(seconds=n)).isoformat(),
             "type": kind, "code": url}
            for url in scanned
            for n, kind in enumerate(kinds_by_url[url])
        ]  # fmt: skip
        # The GTIN item with the same digits and serial as the first crate: its own trip.
        twin = items[0]["serial"]
        events += [
            {"event_id": str(uuid.uuid4()), "ts": (start + timedelta(seconds=n)).isoformat(),
             "type": kind, "gtin": ASSET_TYPE, "serial": twin}
            for n, kind in enumerate(["sold", "returned"])
        ]  # fmt: skip
        make_worker()
        publish_all(broker, topic_root, [("rvm-1", json.dumps({"events": events}).encode())])
        wait_until(lambda: count(db, "SELECT count(*) FROM events WHERE device_id = 'rvm-1'")
                   >= len(events), 30, "all scans stored")  # fmt: skip

        # The aggregates, commissioned-only crate included, equal a recount of the events.
        assert_item_loops(db)
        # Each crate's trips by SPEC §7, from the scans sent (none of the crate never used).
        by_spec = reuse_by_spec(scans([e for e in events if "code" in e]))
        expected = [len(by_spec[("", url)].trips) if ("", url) in by_spec else 0 for url in urls]
        assert expected == PLANNED_TRIPS  # the double scan made no trip
        rows = client.get(
            "/v1/stats/reuse", params={"packaging_type": "pool-crate"}, headers=operator
        ).json()["rows"]
        assert len(rows) == 1
        row = rows[0]
        assert row["items"] == len(urls)
        assert row["trips"] == sum(expected)
        assert row["max_trips"] == max(expected)
        assert row["reached_target"] == sum(t >= POOL_TYPE["target_trips"] for t in expected)
        assert row["histogram"] == [{"trips": t, "items": 1} for t in sorted(expected)]
        crate_rows = client.get(
            "/v1/stats/reuse", params={"packaging_type": "crate-24"}, headers=operator
        ).json()["rows"]
        assert [(r["items"], r["trips"]) for r in crate_rows] == [(1, 1)]

        for url, trips in zip(urls, expected, strict=True):
            path = urlsplit(url).path
            record = client.get(path, headers={"Accept": "application/json"}).json()
            assert (record["grai"], record["gtin"], record["trips"]) == (
                path.removeprefix("/8003/"),
                None,
                trips,
            )
            item = client.get(f"/v1/items{path}", headers=operator).json()
            assert (item["grai"], item["trips"]) == (path.removeprefix("/8003/"), trips)
        page_html = client.get(urlsplit(urls[2]).path, headers={"Accept": "text/html"}).text
        assert "Pool crate" in page_html and f"GRAI {ASSET_TYPE}{items[2]['serial']}" in page_html
        product = client.get(f"/v1/items/{ASSET_TYPE}/{twin}", headers=operator).json()
        assert (product["gtin"], product["trips"], product["product"]) == (ASSET_TYPE, 1, "Crate")

        anomalies = client.get(
            "/v1/stats/anomalies", params={"from": start.isoformat()}, headers=operator
        ).json()
        [duplicate] = anomalies["duplicate_returns"]
        doubled = f"{ASSET_TYPE}{items[DOUBLE_SCANNED]['serial']}"
        assert (duplicate["grai"], duplicate["gtin"]) == (doubled, None)

        # The event list shows an asset's events by its GRAI, never the stored item class.
        listed = client.get("/v1/events", params={"grai": doubled}, headers=operator).json()
        kinds = ["commissioned", *kinds_by_url[urls[DOUBLE_SCANNED]]]
        assert sorted(e["type"] for e in listed["events"]) == sorted(kinds)
        assert {(e["grai"], e["gtin"]) for e in listed["events"]} == {(doubled, None)}
        twins = client.get("/v1/events", params={"gtin": ASSET_TYPE}, headers=operator).json()
        assert [(e["gtin"], e["grai"], e["serial"]) for e in twins["events"]] == [
            (ASSET_TYPE, None, twin)
        ] * 2


def test_the_cli_prints_grai_labels_and_refuses_a_bad_asset_type(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    seed_registry(db, [])
    register_asset_type(db, ASSET_TYPE)
    env = {"LOOPTRACK_DATABASE_URL": db_url, "LOOPTRACK_PUBLIC_BASE_URL": BASE,
           "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "100"}  # fmt: skip

    def looptrack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "looptrack", "labels", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    sheet = tmp_path / "crates.pdf"
    run = looptrack("--grai", ASSET_TYPE, "--count", "12", "-o", str(sheet))
    assert run.returncode == 0, run.stderr
    assert f"12 items of asset type {ASSET_TYPE}" in run.stdout
    serials = {r[0] for r in db.execute("SELECT serial FROM items WHERE item_class = %s",
                                         ("8003" + ASSET_TYPE,))}  # fmt: skip
    (page,) = rendered_pages(sheet.read_bytes())
    assert sorted(zxing_decode(page)) == sorted(f"{BASE}/8003/{ASSET_TYPE}{s}" for s in serials)
    assert len(serials) == 12

    wrong = ASSET_TYPE[:13] + str((int(ASSET_TYPE[13]) + 1) % 10)
    for args, message in [
        (("--grai", wrong), f"check digit should be {ASSET_TYPE[13]}"),
        (("--grai", ASSET_TYPE, "--gtin", ASSET_TYPE), "either --gtin or --grai"),
        (("--grai", "07038010000027"), "no asset type 07038010000027: register it first"),
    ]:
        refused = looptrack(*args, "--count", "1", "-o", str(tmp_path / "x.pdf"))
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
    assert count(db, "SELECT count(*) FROM items") == 12
