"""The public Digital Link resolver: page, JSON record and linkset of what a QR code names,
without a key and without a site or device in sight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from schemas.digital_link import build_uri
from tests.api.problem_assertions import assert_problem
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    event,
    register_asset_type,
    seed_registry,
    with_check_digit,
)
from tests.storing import store

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
COLA = GTIN_COLA.zfill(14)
CRATE = GTIN_CRATE.zfill(14)
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# Every character of GS1 set 82 that a URI path cannot carry literally, and a "%2F" that
# must come back as the three characters it is, not as a slash.
AWKWARD_SERIAL = 'A/B%2F"*?:<>!'


def add_events(db: psycopg.Connection[Any], gtin14: str, serial: str, kinds: list[str]) -> None:
    store(
        db,
        "rvm-1",
        [event(kind, gtin=gtin14, serial=serial, ts=T0 + timedelta(days=day))
         for day, kind in enumerate(kinds)],
    )  # fmt: skip


def commission(db: psycopg.Connection[Any], gtin14: str, serial: str) -> None:
    db.execute("INSERT INTO items (item_class, serial) VALUES (%s, %s)", (gtin14, serial))


def path_of(uri: str) -> str:
    return urlsplit(uri).path


@pytest.fixture
def base(client: TestClient) -> str:
    """The public base URL the app builds Digital Link URIs with."""
    return str(client.app.state.settings.public_base_url)  # type: ignore[attr-defined]


@pytest.fixture
def crate(db: psycopg.Connection[Any], base: str) -> str:
    """A crate with two trips (the second `returned` in a row is a duplicate, not a trip)."""
    seed_registry(db, ["rvm-1"])
    add_events(db, CRATE, "C-1", ["filled", "sold", "returned", "returned", "washed", "filled",
                                  "sold", "returned", "filled", "sold"])  # fmt: skip
    return build_uri(base, CRATE, "C-1")


def test_a_browser_gets_a_page_without_sites_or_devices(
    client: TestClient, crate: str, db: psycopg.Connection[Any]
) -> None:
    response = client.get(path_of(crate), headers=BROWSER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<meta name="viewport"' in page
    assert "Crate" in page and "HDPE" in page and "Crate 24" in page
    assert "<dd>2 of 50</dd>" in page
    assert "Return it to the shop" in page
    assert "shop-1" not in page and "rvm-1" not in page

    # A deposit bottle, commissioned and returned once: its deposit, where to return it,
    # and no trips (single-use packaging makes none).
    commission(db, COLA, "B-1")
    add_events(db, COLA, "B-1", ["sold", "returned"])
    page = client.get(f"/01/{COLA}/21/B-1").text  # the client's default Accept: */*
    assert "Fjord Cola 0.5 l" in page and "PET 0.5 l" in page and "2.00 NOK" in page
    assert "Return it to any reverse-vending machine to get your deposit back" in page
    assert "Trips so far" not in page
    assert "shop-1" not in page and "rvm-1" not in page


def test_json_is_the_public_record_and_nothing_more(client: TestClient, crate: str) -> None:
    response = client.get(path_of(crate), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    assert response.json() == {
        "uri": crate,
        "gtin": CRATE,
        "grai": None,
        "serial": "C-1",
        "product": "Crate",
        "packaging_type": "crate-24",
        "packaging": "Crate 24",
        "material": "HDPE",
        "reusable": True,
        "target_trips": 50,
        "trips": 2,
        "deposit": 0,
        "currency": "NOK",
        "how_to_return": "Return it to the shop: it is cleaned and refilled.",
    }
    assert "shop-1" not in response.text and "rvm-1" not in response.text


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?linkType=all", {}),
        ("?linkType=linkset", {}),
        ("", {"Accept": "application/linkset+json"}),
    ],
)
def test_linkset(client: TestClient, crate: str, query: str, headers: dict[str, str]) -> None:
    response = client.get(path_of(crate) + query, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/linkset+json"
    [context] = response.json()["linkset"]
    assert context["anchor"] == crate
    [pip] = context["https://gs1.org/voc/pip"]
    assert (pip["href"], pip["type"]) == (crate, "text/html")
    assert context["https://gs1.org/voc/defaultLink"] == [pip]
    [trace] = context["https://gs1.org/voc/traceability"]
    assert trace["type"] == "application/json"
    for target in [pip, trace]:
        assert target["title"] and target["hreflang"] == ["en"]
    assert "shop-1" not in response.text and "rvm-1" not in response.text

    # The traceability link answers with the record, whatever the client accepts.
    followed = client.get(path_of(trace["href"]), params={"linkType": "gs1:traceability"})
    assert followed.json()["trips"] == 2


def test_the_page_and_record_point_to_the_linkset(client: TestClient, crate: str) -> None:
    link = client.get(path_of(crate)).headers["link"]
    assert link == f'<{crate}?linkType=linkset>; rel="linkset"; type="application/linkset+json"'


def test_a_shorter_gtin_is_the_same_item(
    client: TestClient, db: psycopg.Connection[Any], base: str
) -> None:
    seed_registry(db, ["rvm-1"])
    commission(db, COLA, "B-1")
    assert len(GTIN_COLA) == 13
    response = client.get(f"/01/{GTIN_COLA}/21/B-1", headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["gtin"] == COLA
    assert response.json()["uri"] == build_uri(base, COLA, "B-1")
    assert response.json()["trips"] is None  # single-use


def test_a_percent_encoded_serial_round_trips(
    client: TestClient, db: psycopg.Connection[Any], base: str
) -> None:
    seed_registry(db, ["rvm-1"])
    commission(db, COLA, AWKWARD_SERIAL)
    uri = build_uri(base, COLA, AWKWARD_SERIAL)
    assert "%252F" in uri and "%2F" in uri  # the label's address, encoded once
    response = client.get(path_of(uri), headers=JSON)
    assert response.status_code == 200, response.text
    assert (response.json()["serial"], response.json()["uri"]) == (AWKWARD_SERIAL, uri)
    # ... and the page escapes what it shows of it.
    page = client.get(path_of(uri)).text
    assert "A/B%2F&quot;*?:&lt;&gt;!" in page


def test_an_unknown_item_or_product_is_404(client: TestClient, db: psycopg.Connection[Any]) -> None:
    seed_registry(db, ["rvm-1"])
    unregistered = "09506000134352"  # a valid GTIN no product has
    add_events(db, unregistered, "X-1", ["returned"])  # scanned, but not registered

    for path in [f"/01/{COLA}/21/NOPE", f"/01/{unregistered}/21/X-1", f"/01/{unregistered}"]:
        page = client.get(path, headers=BROWSER)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Not Found" in page.text and '<meta name="viewport"' in page.text
        assert_problem(client.get(path, headers=JSON), 404, "no ")
    assert_problem(client.get(f"/01/{COLA}/21/NOPE", headers=JSON), 404, f"no item {COLA}/NOPE")


def test_an_invalid_digital_link_is_400_with_the_reason(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    # GS1-Conformant resolvers answer syntax errors with 400, unknown keys with 404.
    seed_registry(db, ["rvm-1"])
    commission(db, COLA, "B-1")
    wrong_check_digit = COLA[:13] + str((int(COLA[13]) + 1) % 10)
    cases = [
        (f"/01/{wrong_check_digit}/21/B-1", f"check digit should be {COLA[13]}"),
        (f"/01/{wrong_check_digit}", f"check digit should be {COLA[13]}"),
        ("/01/70380100012x/21/B-1", "only digits 0-9 allowed"),
        ("/01/123456/21/B-1", "6 digits, expected 8, 12, 13 or 14"),
        (f"/01/{COLA}/21/B%201", "not in the GS1 AI (21) set"),
        (f"/01/{COLA}/21/{'S' * 21}", "at most 20"),
        (f"/01/{COLA}/21/B-1/foo", "Digital Link"),
        # The key is the path's last primary key: one route never answers for the other.
        (f"/01/{COLA}/21/B-1/8003/{COLA}B-1", "its key is not a GTIN (AI 01)"),
        (f"/8003/{COLA}B-1/01/{COLA}/21/B-1", "its key is not a GRAI (AI 8003)"),
    ]
    for path, reason in cases:
        assert_problem(client.get(path, headers=JSON), 400, reason)
        page = client.get(path, headers=BROWSER)
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
        assert "Bad Request" in page.text


def test_the_product_level_link(client: TestClient, db: psycopg.Connection[Any], base: str) -> None:
    seed_registry(db, ["rvm-1"])
    uri = build_uri(base, COLA)
    record = client.get(f"/01/{COLA}", headers=JSON)
    assert record.status_code == 200, record.text
    assert record.json() == {
        "uri": uri,
        "gtin": COLA,
        "grai": None,
        "product": "Fjord Cola 0.5 l",
        "packaging_type": "pet-0.5l",
        "packaging": "PET 0.5 l",
        "material": "PET",
        "reusable": False,
        "target_trips": None,
        "deposit": 200,
        "currency": "NOK",
        "how_to_return": "Return it to any reverse-vending machine to get your deposit back.",
    }
    page = client.get(f"/01/{GTIN_COLA}")  # 13 digits
    assert page.status_code == 200 and "2.00 NOK" in page.text and "Fjord Cola" in page.text

    links = client.get(f"/01/{COLA}", params={"linkType": "all"})
    assert links.headers["content-type"] == "application/linkset+json"
    [context] = links.json()["linkset"]
    assert context["anchor"] == uri
    assert context["https://gs1.org/voc/pip"][0]["href"] == uri
    assert "https://gs1.org/voc/traceability" not in context  # trips belong to items


def test_other_query_parameters_are_ignored(client: TestClient, crate: str) -> None:
    plain = client.get(path_of(crate), headers=JSON).json()
    extra = client.get(
        path_of(crate), params={"utm_source": "label", "linkType": "gs1:unknown"}, headers=JSON
    )
    assert extra.status_code == 200 and extra.json() == plain


def test_the_page_escapes_what_brands_typed(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["rvm-1"])
    db.execute(
        "UPDATE products SET name = %s WHERE item_class = %s",
        ("<script>alert('x')</script> & Co", COLA),
    )
    db.execute("UPDATE packaging_types SET name = '<b>PET</b>' WHERE id = 'pet-0.5l'")
    commission(db, COLA, "B-1")
    for path in [f"/01/{COLA}/21/B-1", f"/01/{COLA}"]:
        page = client.get(path).text
        assert "<script>" not in page and "<b>" not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in page
        assert "&lt;b&gt;PET&lt;/b&gt;" in page


def test_no_key_is_needed_and_cross_origin_reads_are_allowed(
    client: TestClient, crate: str
) -> None:
    response = client.get(path_of(crate), headers={**JSON, "Origin": "https://example.org"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


# -- returnable assets keyed by GRAI (AI 8003) --------------------------------------------

# The crate product's 14 digits, registered again as a GRAI asset type: /01/ and /8003/
# with the same digits name different things.
POOL_CRATE = "Pool crate"
WRONG_CHECK_DIGIT = CRATE[:13] + str((int(CRATE[13]) + 1) % 10)


@pytest.fixture
def asset(db: psycopg.Connection[Any], base: str) -> str:
    """A pool crate, GRAI CRATE + "C-1", scanned at shop-1's rvm-1 through two trips (the
    second `returned` in a row is a duplicate); returns its Digital Link URI."""
    seed_registry(db, ["rvm-1"])
    register_asset_type(db, CRATE)
    uri = f"{base}/8003/{CRATE}C-1"
    kinds = ["filled", "sold", "returned", "returned", "washed", "filled", "sold", "returned"]
    scans = []
    for day, kind in enumerate(kinds):
        scans.append(event(kind, ts=T0 + timedelta(days=day), code=uri))
        del scans[-1]["gtin"]
    store(db, "rvm-1", scans)
    return uri


def test_an_asset_record_page_and_linkset_name_its_grai_and_no_site_or_device(
    client: TestClient, asset: str
) -> None:
    record = client.get(path_of(asset), headers=JSON)
    assert record.status_code == 200, record.text
    assert record.json() == {
        "uri": asset,
        "gtin": None,
        "grai": f"{CRATE}C-1",
        "serial": "C-1",
        "product": POOL_CRATE,
        "packaging_type": "crate-24",
        "packaging": "Crate 24",
        "material": "HDPE",
        "reusable": True,
        "target_trips": 50,
        "trips": 2,
        "deposit": 0,
        "currency": "NOK",
        "how_to_return": "Return it to the shop: it is cleaned and refilled.",
    }
    page = client.get(path_of(asset), headers=BROWSER)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"GRAI {CRATE}C-1" in page.text and POOL_CRATE in page.text
    assert "<dd>2 of 50</dd>" in page.text
    links = client.get(path_of(asset), params={"linkType": "all"})
    assert links.headers["content-type"] == "application/linkset+json"
    [context] = links.json()["linkset"]
    assert context["anchor"] == asset
    assert context["https://gs1.org/voc/traceability"][0]["type"] == "application/json"
    for response in (record, page, links):
        assert "shop-1" not in response.text and "rvm-1" not in response.text
        assert "8003" + CRATE not in response.text  # the stored item class stays inside


def test_a_grai_without_serial_is_the_asset_type(client: TestClient, asset: str, base: str) -> None:
    uri = f"{base}/8003/{CRATE}"
    record = client.get(f"/8003/{CRATE}", headers=JSON)
    assert record.status_code == 200, record.text
    assert record.json() == {
        "uri": uri,
        "gtin": None,
        "grai": CRATE,
        "product": POOL_CRATE,
        "packaging_type": "crate-24",
        "packaging": "Crate 24",
        "material": "HDPE",
        "reusable": True,
        "target_trips": 50,
        "deposit": 0,
        "currency": "NOK",
        "how_to_return": "Return it to the shop: it is cleaned and refilled.",
    }
    page = client.get(f"/8003/{CRATE}", headers=BROWSER).text
    assert f"GRAI {CRATE}" in page and "Made for" in page
    [context] = client.get(f"/8003/{CRATE}", params={"linkType": "all"}).json()["linkset"]
    assert context["anchor"] == uri
    assert "https://gs1.org/voc/traceability" not in context  # trips belong to assets
    for text in (record.text, page):
        assert "shop-1" not in text and "rvm-1" not in text


def test_a_product_and_an_asset_type_with_the_same_digits_stay_apart(
    client: TestClient, asset: str
) -> None:
    # /01/ with the crate's digits is the product 'Crate', which has no item C-1 …
    product = client.get(f"/01/{CRATE}", headers=JSON).json()
    assert (product["product"], product["gtin"], product["grai"]) == ("Crate", CRATE, None)
    assert_problem(client.get(f"/01/{CRATE}/21/C-1", headers=JSON), 404, f"no item {CRATE}/C-1")
    # … and the cola's digits, a product, are no asset type.
    assert_problem(client.get(f"/8003/{COLA}", headers=JSON), 404, f"no asset {COLA}")
    assert_problem(client.get(f"/8003/{COLA}C-1", headers=JSON), 404, f"no asset {COLA}C-1")


def test_an_unknown_asset_is_404(client: TestClient, asset: str) -> None:
    unregistered = "09506000134352"  # a valid asset type no one registered
    # A serial of 16 characters is the longest a GRAI has: valid, but no such asset.
    for grai in [f"{CRATE}C-2", f"{CRATE}{'S' * 16}", unregistered, f"{unregistered}C-1"]:
        assert_problem(client.get(f"/8003/{grai}", headers=JSON), 404, f"no asset {grai}")
        page = client.get(f"/8003/{grai}", headers=BROWSER)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Not Found" in page.text


def test_an_invalid_grai_is_400_with_the_reason(client: TestClient, asset: str) -> None:
    cases = [
        (f"/8003/{WRONG_CHECK_DIGIT}C-1", f"check digit should be {CRATE[13]}"),
        (f"/8003/{WRONG_CHECK_DIGIT}", f"check digit should be {CRATE[13]}"),
        # The padding digit of an asset type is 0, whatever the check digit says.
        (f"/8003/{with_check_digit('1' + CRATE[1:13])}C-1", "the first digit is a padding 0"),
        (f"/8003/{CRATE[1:]}", "13 digits, expected 14"),
        (f"/8003/{CRATE}{'S' * 17}", "17 characters, at most 16"),
        (f"/8003/{CRATE}C%201", "outside the GS1 set 82"),
        # A GRAI carries its serial in its own value, never in an AI (21).
        (f"/8003/{CRATE}/21/C-1", "a GRAI carries its serial"),
    ]
    for path, reason in cases:
        problem = client.get(path, headers=JSON)
        assert_problem(problem, 400, reason)
        assert problem.json()["type"] == "/problems/invalid-digital-link"
        page = client.get(path, headers=BROWSER)
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
        assert "Bad Request" in page.text
