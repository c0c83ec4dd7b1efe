"""Registry endpoints: idempotent PUT, role checks, brand scoping, problem+json errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from schemas.rollups import LOCK_CLASS, item_class_slot
from tests.api.problem_assertions import assert_problem
from tests.conftest import wait_until
from tests.factories import GTIN_COLA, GTIN_CRATE, count, seed_registry, with_check_digit

PET = {"name": "PET 0.5 l", "material": "PET", "deposit": 200, "weight_g": 22}
COLA = {"packaging_type": "pet-0.5l", "brand": "fjord", "name": "Fjord Cola"}


def test_put_is_an_idempotent_upsert(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    first = client.put("/v1/packaging-types/pet-0.5l", json=PET, headers=keys["operator"])
    assert first.status_code == 201
    again = client.put("/v1/packaging-types/pet-0.5l", json=PET, headers=keys["operator"])
    assert again.status_code == 200
    changed = client.put(
        "/v1/packaging-types/pet-0.5l", json={**PET, "deposit": 300}, headers=keys["admin"]
    )
    assert changed.status_code == 200 and changed.json()["deposit"] == 300
    got = client.get("/v1/packaging-types/pet-0.5l", headers=keys["fjord"]).json()
    assert got == {
        "id": "pet-0.5l", "name": "PET 0.5 l", "material": "PET", "reusable": False,
        "target_trips": None, "deposit": 300, "weight_g": "22.00",
        "recycled_content_pct": "0.00", "renewable_content_pct": "0.00", "fibre_based": False,
    }  # fmt: skip
    assert count(db, "SELECT count(*) FROM packaging_types") == 1


def test_product_gtin_is_normalised_and_validated(client: TestClient, keys: dict[str, Any]) -> None:
    client.put("/v1/packaging-types/pet-0.5l", json=PET, headers=keys["operator"])
    created = client.put(f"/v1/products/{GTIN_COLA}", json=COLA, headers=keys["fjord"])
    assert created.status_code == 201
    assert created.json()["gtin"] == GTIN_COLA.zfill(14)
    # The same product by its 14-digit form.
    assert (
        client.get(f"/v1/products/{GTIN_COLA.zfill(14)}", headers=keys["fjord"]).status_code == 200
    )
    bad = GTIN_COLA[:-1] + str((int(GTIN_COLA[-1]) + 1) % 10)
    assert_problem(
        client.put(f"/v1/products/{bad}", json=COLA, headers=keys["fjord"]),
        422,
        f"check digit should be {GTIN_COLA[-1]}",
    )
    assert_problem(
        client.put(
            f"/v1/products/{GTIN_CRATE}", json={**COLA, "packaging_type": "nope"},
            headers=keys["operator"],
        ),
        422,
        "unknown packaging type 'nope'",
    )  # fmt: skip


def test_a_brand_sees_and_changes_only_its_own_products(
    client: TestClient, keys: dict[str, Any]
) -> None:
    client.put("/v1/packaging-types/pet-0.5l", json=PET, headers=keys["operator"])
    client.put(f"/v1/products/{GTIN_COLA}", json=COLA, headers=keys["fjord"])
    other_product = {**COLA, "brand": "other", "name": "Other Crate"}
    client.put(f"/v1/products/{GTIN_CRATE}", json=other_product, headers=keys["other"])

    # Reading another brand's product: 404, as if it did not exist.
    assert_problem(
        client.get(f"/v1/products/{GTIN_CRATE}", headers=keys["fjord"]), 404, "no product"
    )
    # Lists: own products only, whatever the filter asks for.
    mine = client.get("/v1/products", headers=keys["fjord"]).json()["items"]
    assert [p["gtin"] for p in mine] == [GTIN_COLA.zfill(14)]
    asked = client.get("/v1/products?brand=other", headers=keys["fjord"]).json()["items"]
    assert asked == []
    everyone = client.get("/v1/products", headers=keys["operator"]).json()["items"]
    assert len(everyone) == 2
    # Writing: not under another brand's name, not over another brand's GTIN.
    assert_problem(
        client.put(f"/v1/products/{GTIN_CRATE}", json=other_product, headers=keys["fjord"]),
        403,
        "may only register products and asset types of that brand",
    )
    assert_problem(
        client.put(f"/v1/products/{GTIN_CRATE}", json=COLA, headers=keys["fjord"]),
        403,
        "belongs to another brand",
    )
    assert client.get(f"/v1/products/{GTIN_CRATE}", headers=keys["other"]).json()["name"] == (
        "Other Crate"
    )


def test_roles_and_keys(client: TestClient, keys: dict[str, Any]) -> None:
    site = {"name": "Shop", "kind": "shop"}
    assert_problem(client.put("/v1/sites/shop-1", json=site), 401, "missing API key")
    assert_problem(
        client.put("/v1/sites/shop-1", json=site, headers={"Authorization": "Bearer lt_nope"}),
        401,
        "unknown or revoked API key",
    )
    assert_problem(
        client.put("/v1/sites/shop-1", json=site, headers=keys["fjord"]), 403, "role brand"
    )
    assert client.put("/v1/sites/shop-1", json=site, headers=keys["operator"]).status_code == 201
    assert_problem(client.get("/v1/devices", headers=keys["fjord"]), 403, "role brand")


def test_devices_list_shows_liveness(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    client.put("/v1/sites/shop-1", json={"name": "Shop", "kind": "shop"}, headers=keys["operator"])
    for device in ("rvm-1", "rvm-2"):
        response = client.put(
            f"/v1/devices/{device}",
            json={"site": "shop-1", "kind": "rvm"},
            headers=keys["operator"],
        )
        assert response.status_code == 201
    db.execute(
        "INSERT INTO device_state (device_id, last_seen, online) VALUES ('rvm-1', now(), true)"
    )
    db.execute(
        "INSERT INTO device_counts_daily VALUES ((now() AT TIME ZONE 'UTC')::date, 'rvm-1', 7)"
    )
    db.execute("INSERT INTO seq_gaps (device_id, gap_from, gap_to) VALUES ('rvm-1', 4, 6)")
    items = client.get("/v1/devices", headers=keys["operator"]).json()["items"]
    assert [(d["id"], d["online"], d["events_today"], d["seq_gaps"]) for d in items] == [
        ("rvm-1", True, 7, 3),
        ("rvm-2", None, 0, 0),
    ]
    assert_problem(
        client.put("/v1/devices/rvm-3", json={"site": "nowhere", "kind": "rvm"},
                   headers=keys["operator"]),
        422,
        "unknown site 'nowhere'",
    )  # fmt: skip
    assert_problem(
        client.put("/v1/devices/rvm-3", json={"site": "shop-1", "kind": "robot"},
                   headers=keys["operator"]),
        422,
        "kind",
    )  # fmt: skip
    assert_problem(client.get("/v1/devices?limit=5000", headers=keys["operator"]), 422, "limit")


def test_a_put_rolled_back_by_a_deadlock_answers_503_and_changes_nothing(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any], db_url: str
) -> None:
    """A product re-assignment that deadlocks with concurrent work (here: a transaction
    holding the product row and then asking for the GTIN's lock slot, as no real caller
    does) is rolled back and told to try again, not answered with a 500."""
    seed_registry(db, [])
    gtin = GTIN_COLA.zfill(14)
    body = {"packaging_type": "crate-24", "brand": "fjord", "name": "Moved"}
    with psycopg.connect(db_url) as other:
        other.execute("SELECT 1 FROM products WHERE item_class = %s FOR UPDATE", (gtin,))
        with ThreadPoolExecutor(1) as pool:
            put = pool.submit(
                client.put, f"/v1/products/{gtin}", json=body, headers=keys["operator"]
            )
            # The PUT holds the GTIN's slot and waits for the row…
            wait_until(
                lambda: count(
                    db,
                    # This test's database only: tests in parallel take row locks too.
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%%FOR UPDATE%%'"
                    " AND pid <> %s",
                    other.info.backend_pid,
                ),
                10,
                "the PUT waiting for the product row",
            )
            # …and this transaction now waits for the slot: a deadlock, which PostgreSQL
            # breaks by aborting the PUT (it has waited longest).
            other.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, item_class_slot(gtin))
            )
            response = put.result(30)
        other.rollback()
    assert_problem(response, 503, "send it again")
    assert response.headers["Retry-After"] == "1"
    row = db.execute("SELECT packaging_type_id, name FROM products WHERE item_class = %s", (gtin,))
    assert row.fetchone() == ("pet-0.5l", "Fjord Cola 0.5 l")


# -- GRAI asset types ---------------------------------------------------------------------

# The crate product's 14 digits, registered again as a GRAI asset type: GTINs and asset
# types are numbered independently, so the same digits may name both.
ASSET_TYPE = GTIN_CRATE.zfill(14)
OTHER_ASSET_TYPE = with_check_digit("0703801000888")
POOL_CRATE = {"packaging_type": "crate-24", "brand": "fjord", "name": "Pool crate"}
# The content figures a product leaves to its packaging type, as the API answers them.
INHERITED = {"recycled_content_pct": None, "renewable_content_pct": None, "fibre_based": None}


def test_an_asset_type_put_is_an_upsert_beside_the_product_of_the_same_digits(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    created = client.put(f"/v1/asset-types/{ASSET_TYPE}", json=POOL_CRATE, headers=keys["fjord"])
    assert created.status_code == 201, created.text
    assert created.json() == {"grai": ASSET_TYPE, **POOL_CRATE, **INHERITED}
    renamed = {**POOL_CRATE, "name": "Pool crate, blue"}
    again = client.put(f"/v1/asset-types/{ASSET_TYPE}", json=renamed, headers=keys["operator"])
    assert again.status_code == 200, again.text
    got = client.get(f"/v1/asset-types/{ASSET_TYPE}", headers=keys["fjord"])
    assert got.status_code == 200 and got.json() == {"grai": ASSET_TYPE, **renamed, **INHERITED}
    assert (
        count(db, "SELECT count(*) FROM products WHERE item_class = %s", "8003" + ASSET_TYPE) == 1
    )
    # The product 'Crate' under the same 14 digits is another record, left as it was.
    product = client.get(f"/v1/products/{ASSET_TYPE}", headers=keys["fjord"]).json()
    assert (product["name"], product["packaging_type"]) == ("Crate", "crate-24")
    assert_problem(
        client.put(
            f"/v1/asset-types/{OTHER_ASSET_TYPE}", json={**POOL_CRATE, "packaging_type": "nope"},
            headers=keys["operator"],
        ),
        422,
        "unknown packaging type 'nope'",
    )  # fmt: skip
    assert (
        count(db, "SELECT count(*) FROM products WHERE item_class = %s", "8003" + OTHER_ASSET_TYPE)
        == 0
    )


@pytest.mark.parametrize(
    ("asset_type", "reason"),
    [
        (
            ASSET_TYPE[:13] + str((int(ASSET_TYPE[13]) + 1) % 10),
            f"check digit should be {ASSET_TYPE[13]}",
        ),
        # A valid check digit, but the padding digit of a GRAI is always 0.
        (with_check_digit("1" + ASSET_TYPE[1:13]), "the first digit is a padding 0, not 1"),
        # A GTIN-13 typed as an asset type, without the padding 0.
        (ASSET_TYPE[1:], "13 digits, expected 14"),
        (ASSET_TYPE[:13] + "X", "only digits 0-9 allowed"),
    ],
)
def test_an_invalid_asset_type_is_422_with_the_reason(
    client: TestClient,
    keys: dict[str, Any],
    db: psycopg.Connection[Any],
    asset_type: str,
    reason: str,
) -> None:
    seed_registry(db, [])
    for response in [
        client.put(f"/v1/asset-types/{asset_type}", json=POOL_CRATE, headers=keys["operator"]),
        client.get(f"/v1/asset-types/{asset_type}", headers=keys["operator"]),
    ]:
        assert_problem(response, 422, reason)
        assert response.json()["type"] == "/problems/invalid-grai"
    assert count(db, "SELECT count(*) FROM products WHERE length(item_class) = 18") == 0


def test_a_brand_registers_and_sees_only_its_own_asset_types(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])
    mine = client.put(f"/v1/asset-types/{ASSET_TYPE}", json=POOL_CRATE, headers=keys["fjord"])
    assert mine.status_code == 201, mine.text
    theirs_body = {**POOL_CRATE, "brand": "other", "name": "Other crate"}
    theirs = client.put(
        f"/v1/asset-types/{OTHER_ASSET_TYPE}", json=theirs_body, headers=keys["other"]
    )
    assert theirs.status_code == 201, theirs.text

    # Writing: not under another brand's name, not over another brand's asset type.
    third = with_check_digit("0703801000777")
    assert_problem(
        client.put(f"/v1/asset-types/{third}", json=POOL_CRATE, headers=keys["other"]),
        403,
        "may only register",
    )
    assert_problem(
        client.put(f"/v1/asset-types/{ASSET_TYPE}", json=POOL_CRATE, headers=keys["other"]),
        403,
        "may only register",
    )
    assert_problem(
        client.put(f"/v1/asset-types/{ASSET_TYPE}", json=theirs_body, headers=keys["other"]),
        403,
        f"grai {ASSET_TYPE} belongs to another brand",
    )
    assert count(db, "SELECT count(*) FROM products WHERE item_class = %s", "8003" + third) == 0
    kept = client.get(f"/v1/asset-types/{ASSET_TYPE}", headers=keys["operator"]).json()
    assert kept == {"grai": ASSET_TYPE, **POOL_CRATE, **INHERITED}

    # Reading: another brand's asset type is 404, as if it did not exist, and never listed.
    assert_problem(
        client.get(f"/v1/asset-types/{ASSET_TYPE}", headers=keys["other"]),
        404,
        f"no asset type with grai {ASSET_TYPE}",
    )
    assert_problem(
        client.get(f"/v1/asset-types/{OTHER_ASSET_TYPE}", headers=keys["fjord"]), 404, "no asset"
    )

    def listed(who: str, **params: str) -> list[str]:
        response = client.get("/v1/asset-types", params=params, headers=keys[who])
        assert response.status_code == 200, response.text
        return [a["grai"] for a in response.json()["items"]]

    assert listed("other") == [OTHER_ASSET_TYPE]
    assert listed("other", brand="fjord") == []
    assert listed("fjord") == [ASSET_TYPE]
    assert listed("operator") == sorted([ASSET_TYPE, OTHER_ASSET_TYPE])
    assert listed("operator", brand="other") == [OTHER_ASSET_TYPE]


def test_products_and_asset_types_are_listed_apart_even_with_the_same_digits(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, [])  # products GTIN_COLA and GTIN_CRATE of brand 'fjord'
    for asset_type in (ASSET_TYPE, OTHER_ASSET_TYPE):
        put = client.put(f"/v1/asset-types/{asset_type}", json=POOL_CRATE, headers=keys["fjord"])
        assert put.status_code == 201, put.text
    products = sorted([GTIN_COLA.zfill(14), GTIN_CRATE.zfill(14)])
    asset_types = sorted([ASSET_TYPE, OTHER_ASSET_TYPE])

    for who in ("fjord", "operator"):
        listed = client.get("/v1/products", headers=keys[who]).json()["items"]
        assert [(p["gtin"], p["name"]) for p in listed] == [
            (gtin, "Crate" if gtin == ASSET_TYPE else "Fjord Cola 0.5 l") for gtin in products
        ]
        listed = client.get("/v1/asset-types", headers=keys[who]).json()["items"]
        assert [(a["grai"], a["name"]) for a in listed] == [(g, "Pool crate") for g in asset_types]
    # The cola's 14 digits have an asset type's shape, but name only a product.
    assert_problem(
        client.get(f"/v1/asset-types/{GTIN_COLA.zfill(14)}", headers=keys["operator"]),
        404,
        "no asset type",
    )
    assert_problem(
        client.get(f"/v1/products/{OTHER_ASSET_TYPE}", headers=keys["operator"]), 404, "no product"
    )

    # Paging through asset types one at a time: each once, then no next page.
    seen, after = [], ""
    for _ in range(len(asset_types) + 1):
        page = client.get(
            "/v1/asset-types", params={"limit": 1, "after": after}, headers=keys["fjord"]
        ).json()
        seen += [a["grai"] for a in page["items"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == asset_types
    assert page["next"] is None and page["items"] == []
