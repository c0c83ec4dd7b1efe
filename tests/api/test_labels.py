"""POST /v1/labels and GET /v1/labels/{batch_id}: who may commission, what comes back,
and every bad request a clear 4xx that creates nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker
from tests.factories import GTIN_COLA, GTIN_CRATE, count, seed_registry

COLA = GTIN_COLA.zfill(14)
BASE = "https://id.example.no"


@pytest.fixture
def labels_client(db_url: str, broker: Broker, topic_root: str) -> Any:
    settings = Settings(
        database_url=db_url,
        mqtt_url=broker.url,
        topic_root=topic_root,
        public_base_url=BASE,
        labels_max_count=500,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def nothing_created(db: psycopg.Connection[Any]) -> bool:
    return (
        count(db, "SELECT count(*) FROM items") == 0
        and count(db, "SELECT count(*) FROM label_batches") == 0
        and count(db, "SELECT count(*) FROM events") == 0
    )


def test_a_brand_commissions_a_batch_and_downloads_it_again(
    labels_client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    response = labels_client.post(
        "/v1/labels", json={"gtin": GTIN_COLA, "count": 30, "format": "pdf"}, headers=keys["fjord"]
    )
    assert response.status_code == 201, response.text
    body = response.json()
    serials = [item["serial"] for item in body["items"]]
    assert len(set(serials)) == 30
    assert [item["url"] for item in body["items"]] == [f"{BASE}/01/{COLA}/21/{s}" for s in serials]
    assert body["download"] == f"/v1/labels/{body['batch_id']}"
    pdf = labels_client.get(body["download"], headers=keys["fjord"])
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    grid = labels_client.get(
        body["download"], params={"columns": 4, "rows": 10}, headers=keys["fjord"]
    )
    assert grid.status_code == 200 and grid.content.startswith(b"%PDF")
    as_zip = labels_client.get(body["download"], params={"format": "zip"}, headers=keys["fjord"])
    assert as_zip.headers["content-type"] == "application/zip"
    # Another brand cannot see the batch; one item's QR code is there for its readers.
    other = labels_client.get(body["download"], headers=keys["other"])
    assert_problem(other, 404, "no label batch")
    svg = labels_client.get(f"/v1/items/{COLA}/{serials[0]}/qr.svg", headers=keys["operator"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    png = labels_client.get(f"/v1/items/{COLA}/{serials[0]}/qr.png", headers=keys["fjord"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("who", "body", "status", "detail"),
    [
        ("fjord", {"gtin": "07038010000010", "count": 1}, 404, "no product 07038010000010"),
        ("other", {"gtin": GTIN_COLA, "count": 1}, 404, f"no product {COLA} of yours"),
        ("fjord", {"gtin": "7038010001238", "count": 1}, 422, "check digit"),
        ("fjord", {"gtin": GTIN_COLA, "count": 0}, 422, "count"),
        ("fjord", {"gtin": GTIN_COLA, "count": 501}, 422, "above the maximum of 500"),
        ("fjord", {"gtin": GTIN_COLA, "count": 2, "format": "png"}, 422, "use pdf or zip"),
        ("fjord", {"gtin": GTIN_COLA, "count": 1, "format": "gif"}, 422, "format"),
        ("operator", {"gtin": GTIN_COLA, "count": 1}, 403, "may not"),
        ("device", {"gtin": GTIN_COLA, "count": 1}, 403, "may not"),
    ],
)
def test_bad_label_requests_are_clear_and_create_nothing(
    labels_client: TestClient,
    keys: dict[str, Any],
    db: psycopg.Connection[Any],
    who: str,
    body: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    seed_registry(db, ["rvm-9"])
    if who == "device":
        headers = {"Authorization": f"Bearer {create_key(db, Role.DEVICE, 'd', device_id='rvm-9')}"}
    else:
        headers = keys[who]
    response = labels_client.post("/v1/labels", json=body, headers=headers)
    assert_problem(response, status, detail)
    assert nothing_created(db)


def test_a_crate_batch_of_the_other_product_is_its_own(
    labels_client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    for gtin in (GTIN_COLA, GTIN_CRATE):
        response = labels_client.post(
            "/v1/labels", json={"gtin": gtin, "count": 3, "format": "zip"}, headers=keys["admin"]
        )
        assert response.status_code == 201, response.text
    assert count(db, "SELECT count(DISTINCT batch_id) FROM items") == 2
    assert count(db, "SELECT count(*) FROM events WHERE type = 'commissioned'") == 6
