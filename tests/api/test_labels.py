"""POST /v1/labels and GET /v1/labels/{batch_id}: who may commission, what comes back,
and every bad request a clear 4xx that creates nothing."""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.labels import sheets
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    count,
    register_asset_type,
    seed_registry,
    with_check_digit,
)
from tests.qr import zxing_decode

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


# -- GRAI asset types ---------------------------------------------------------------------

# The crate product's 14 digits, also a GRAI asset type of brand 'fjord' (GTINs and asset
# types are numbered independently); a second asset type is registered only as one.
ASSET_TYPE = GTIN_CRATE.zfill(14)
ONLY_ASSET_TYPE = with_check_digit("0703801000888")


@pytest.fixture
def asset_types(db: psycopg.Connection[Any]) -> None:
    """The seed registry, and both asset types stored as the design files them: product
    rows of item class "8003" + asset type."""
    seed_registry(db, ["rvm-9"])
    for asset_type in (ASSET_TYPE, ONLY_ASSET_TYPE):
        register_asset_type(db, asset_type)


@pytest.mark.parametrize(
    ("who", "body", "status", "detail"),
    [
        ("fjord", {"gtin": COLA, "grai": ASSET_TYPE, "count": 1}, 422, "either gtin or grai"),
        ("fjord", {"count": 1}, 422, "either gtin or grai"),
        ("other", {"grai": ASSET_TYPE, "count": 1}, 404, f"no asset type {ASSET_TYPE} of yours"),
        # A product's digits are not an asset type, nor an asset type's a product.
        ("fjord", {"grai": COLA, "count": 1}, 404, f"no asset type {COLA} of yours"),
        ("fjord", {"gtin": ONLY_ASSET_TYPE, "count": 1}, 404, f"no product {ONLY_ASSET_TYPE}"),
        (
            "fjord",
            {"grai": ASSET_TYPE[:13] + str((int(ASSET_TYPE[13]) + 1) % 10), "count": 1},
            422,
            f"check digit should be {ASSET_TYPE[13]}",
        ),
        ("fjord", {"grai": ASSET_TYPE[1:], "count": 1}, 422, "13 digits, expected 14"),
        ("fjord", {"grai": ASSET_TYPE + "C1", "count": 1}, 422, "grai"),  # a whole GRAI
        ("fjord", {"grai": ASSET_TYPE, "count": 2, "format": "svg"}, 422, "use pdf or zip"),
    ],
)
def test_bad_grai_label_requests_are_clear_and_create_nothing(
    labels_client: TestClient,
    keys: dict[str, Any],
    db: psycopg.Connection[Any],
    asset_types: None,
    who: str,
    body: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    response = labels_client.post("/v1/labels", json=body, headers=keys[who])
    assert_problem(response, status, detail)
    assert nothing_created(db)


def test_an_asset_qr_code_reads_as_its_grai_link_for_its_brand_only(
    labels_client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any], asset_types: None
) -> None:
    made = labels_client.post(
        "/v1/labels", json={"grai": ASSET_TYPE, "count": 1, "format": "png"}, headers=keys["fjord"]
    )
    assert made.status_code == 201, made.text
    [item] = made.json()["items"]
    serial = item["serial"]
    url = f"{BASE}/8003/{ASSET_TYPE}{serial}"
    assert item["url"] == url
    assert count(db, "SELECT count(*) FROM items WHERE item_class = %s", "8003" + ASSET_TYPE) == 1

    png = labels_client.get(f"/v1/items/8003/{ASSET_TYPE}{serial}/qr.png", headers=keys["fjord"])
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert zxing_decode(Image.open(io.BytesIO(png.content))) == [url]
    svg = labels_client.get(f"/v1/items/8003/{ASSET_TYPE}{serial}/qr.svg", headers=keys["operator"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    batch = labels_client.get(made.json()["download"], headers=keys["fjord"])
    assert zxing_decode(Image.open(io.BytesIO(batch.content))) == [url]

    # Another brand: 404 for the QR code and the batch, as if neither existed; the error
    # names the asset by its GRAI, not by the stored item class.
    refused = labels_client.get(
        f"/v1/items/8003/{ASSET_TYPE}{serial}/qr.png", headers=keys["other"]
    )
    assert_problem(refused, 404, f"no asset {ASSET_TYPE}{serial}")
    assert "8003" + ASSET_TYPE not in refused.text
    assert_problem(labels_client.get(made.json()["download"], headers=keys["other"]), 404, "no")
    # The product with the same digits has no item of that serial; a GRAI needs a serial.
    assert_problem(
        labels_client.get(f"/v1/items/{ASSET_TYPE}/{serial}/qr.png", headers=keys["fjord"]),
        404,
        "no item",
    )
    assert_problem(
        labels_client.get(f"/v1/items/8003/{ASSET_TYPE}/qr.png", headers=keys["fjord"]),
        422,
        "no serial",
    )


def test_large_renders_take_turns_and_one_that_cannot_is_refused_with_retry_after(
    labels_client: TestClient,
    keys: dict[str, Any],
    db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most RENDER_SLOTS renders of more than SMALL_RENDER labels run at once; one that
    finds no slot within RENDER_WAIT_S is a 503 with Retry-After, while small ones go on."""
    seed_registry(db, [])

    def batch(count_: int) -> str:
        made = labels_client.post(
            "/v1/labels", json={"gtin": GTIN_COLA, "count": count_}, headers=keys["fjord"]
        )
        assert made.status_code == 201, made.text
        return str(made.json()["download"])

    large, small = batch(sheets.SMALL_RENDER + 50), batch(5)
    monkeypatch.setattr(sheets, "RENDER_WAIT_S", 0.2)
    taken = [sheets._render_slots.acquire(timeout=5) for _ in range(sheets.RENDER_SLOTS)]
    try:
        assert all(taken)  # as if two large renders were running
        refused = labels_client.get(large, headers=keys["fjord"])
        assert_problem(refused, 503, "send the request again later")
        assert int(refused.headers["retry-after"]) >= 1
        assert labels_client.get(small, headers=keys["fjord"]).status_code == 200
    finally:
        for _ in taken:
            sheets._render_slots.release()
    done = labels_client.get(large, headers=keys["fjord"])
    assert done.status_code == 200 and done.content.startswith(b"%PDF")
