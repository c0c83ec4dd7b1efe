"""The pages for people (issue 7), over HTTP without a browser: login and its cookie, who
may see which page, the numbers against a scenario published through the real worker, a
brand that never sees another brand's product, CSV downloads and the label form's PDF."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    count,
    event,
    register_asset_type,
    seed_registry,
    with_check_digit,
)
from tests.qr import rendered_pages, zxing_decode
from tests.storing import store

OTHER_GTIN = with_check_digit("703801000777")
OTHER_NAME = "Secret Soda of Another Brand"
BASE = "https://id.example.no"


@pytest.fixture
def keys(db: psycopg.Connection[Any]) -> dict[str, str]:
    seed_registry(db, ["rvm-1"])
    db.execute(
        "INSERT INTO products (item_class, packaging_type_id, brand, name) VALUES (%s, 'pet-0.5l',"
        " 'other', %s)",
        (OTHER_GTIN.zfill(14), OTHER_NAME),
    )
    return {
        "operator": create_key(db, Role.OPERATOR, "op"),
        "brand": create_key(db, Role.BRAND, "fjord", brand="fjord"),
        "device": create_key(db, Role.DEVICE, "d", device_id="rvm-1"),
    }


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Any:
    settings = Settings(
        database_url=db_url, mqtt_url=broker.url, topic_root=topic_root, public_base_url=BASE
    )
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def log_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    answer = client.post("/login", data={"key": key})
    assert answer.status_code == 303, answer.text


def test_login_keeps_a_session_in_an_httponly_strict_cookie(
    client: TestClient, keys: dict[str, str]
) -> None:
    answer = client.get("/dashboard")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
    refused = client.post("/login", data={"key": "lt_not-a-key"})
    assert refused.status_code == 401 and "Unknown or revoked API key." in refused.text
    device = client.post("/login", data={"key": keys["device"]})
    assert device.status_code == 401 and "device key cannot use these pages" in device.text

    answer = client.post("/login", data={"key": keys["operator"], "next": "//evil.example/"})
    assert answer.headers["location"] == "/dashboard"  # no open redirect
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/dashboard").status_code == 200
    assert client.get("/portal").status_code == 303  # an operator key is not a brand's

    log_in(client, keys["brand"])
    assert client.get("/portal").status_code == 200
    assert client.get("/dashboard").status_code == 303
    assert client.get("/dashboard/devices.csv").status_code == 303
    out = client.post("/logout")
    assert out.status_code == 303 and "looptrack_session=" in out.headers["set-cookie"]


def test_the_cookie_holds_a_session_that_logout_and_revocation_end_for_good(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    """The cookie carries a random session id, never the key: it is no bearer key, only
    its hash is stored, and a copy of it opens nothing once the browser logged out, the
    session expired, or the key was revoked."""
    log_in(client, keys["operator"])
    session = client.cookies["looptrack_session"]
    assert keys["operator"] not in session
    as_bearer = client.get("/v1/packaging-types", headers={"Authorization": f"Bearer {session}"})
    assert as_bearer.status_code == 401
    stored = db.execute("SELECT id_hash FROM page_sessions").fetchall()
    assert stored == [(hashlib.sha256(session.encode()).digest(),)]

    assert client.post("/logout").status_code == 303
    client.cookies.set("looptrack_session", session)  # a copy kept from before the logout
    assert client.get("/dashboard").status_code == 303  # to the login form
    assert count(db, "SELECT count(*) FROM page_sessions") == 0

    log_in(client, keys["operator"])
    db.execute("UPDATE page_sessions SET expires_at = now() - interval '1 second'")
    assert client.get("/dashboard").status_code == 303
    log_in(client, keys["operator"])
    assert client.get("/dashboard").status_code == 200
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE role = 'operator'")
    assert client.get("/dashboard").status_code == 303


def test_the_pages_show_the_scenario_and_a_brand_sees_only_its_own(
    client: TestClient,
    keys: dict[str, str],
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
) -> None:
    # The scenario: sold/returned/rejected per GTIN, counted here as they are generated.
    plan = [("sold", GTIN_COLA)] * 9 + [("returned", GTIN_COLA)] * 6
    plan += [("returned", GTIN_CRATE)] * 4
    plan += [("sold", OTHER_GTIN)] * 5 + [("returned", OTHER_GTIN)] * 3
    # Rejects by reason: (gtin, reason) of each.
    refused = [(GTIN_COLA, "damaged")] * 2 + [(GTIN_COLA, "not_empty")] * 3
    refused += [(GTIN_CRATE, "damaged")] + [(OTHER_GTIN, "damaged")] * 4
    sent = [event(kind, gtin=gtin) for kind, gtin in plan]
    sent += [event("rejected", gtin=gtin, reason=reason) for gtin, reason in refused]
    plan += [("rejected", gtin) for gtin, _ in refused]
    expected = Counter((kind, gtin) for kind, gtin in plan)
    make_worker()
    publish_all(broker, topic_root, [("rvm-1", json.dumps(e).encode()) for e in sent])
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == len(sent), 30, "the events")

    log_in(client, keys["operator"])
    page = client.get("/dashboard").text
    pet = expected[("sold", GTIN_COLA)], expected[("returned", GTIN_COLA)]
    other = expected[("sold", OTHER_GTIN)], expected[("returned", OTHER_GTIN)]
    # pet-0.5l holds both brands' PET bottles: the operator sees them together.
    assert row_numbers(page, "pet-0.5l") == (pet[0] + other[0], pet[1] + other[1])
    assert row_numbers(page, "crate-24") == (0, expected[("returned", GTIN_CRATE)])
    assert 'data-device="rvm-1"' in page
    by_reason = {("damaged", "pet-0.5l"): 2 + 4, ("not_empty", "pet-0.5l"): 3,
                 ("damaged", "crate-24"): 1}  # fmt: skip
    assert reject_numbers(page) == by_reason
    assert {
        (r["reason"], r["packaging_type"]): int(r["rejected"])
        for r in read_csv(client.get("/dashboard/rejects.csv"))
    } == by_reason
    rates = read_csv(client.get("/dashboard/return-rates.csv"))
    assert sum(int(r["sold"]) for r in rates) == pet[0] + other[0]
    assert {r["id"] for r in read_csv(client.get("/dashboard/devices.csv"))} == {"rvm-1"}
    assert "No serialised items yet." in client.get("/dashboard/reuse").text

    log_in(client, keys["brand"])
    portal = client.get("/portal").text
    assert row_numbers(portal, "pet-0.5l") == pet
    assert row_numbers(portal, "crate-24") == (0, expected[("returned", GTIN_CRATE)])
    assert reject_numbers(portal) == {("damaged", "pet-0.5l"): 2, ("not_empty", "pet-0.5l"): 3,
                                      ("damaged", "crate-24"): 1}  # fmt: skip
    pages = ["/portal/reuse"] + [
        f"/portal/{table}.csv"
        for table in ("return-rates", "rejects", "reuse", "products", "duplicates")
    ]
    everything = portal + "".join(client.get(path).text for path in pages)
    assert "Fjord Cola" in everything
    assert OTHER_NAME not in everything and OTHER_GTIN.zfill(14) not in everything
    assert client.get("/portal/devices.csv").status_code == 404


def test_the_label_form_downloads_a_pdf_whose_codes_decode(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    log_in(client, keys["brand"])
    crate = GTIN_CRATE.zfill(14)
    answer = client.post("/portal/labels", data={"product": crate, "count": "10", "layout": "2x5"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert "attachment" in answer.headers["content-disposition"]
    (page,) = rendered_pages(answer.content)
    decoded = sorted(zxing_decode(page))
    serials = [r[0] for r in db.execute("SELECT serial FROM items WHERE item_class = %s", (crate,))]
    assert decoded == sorted(f"{BASE}/01/{crate}/21/{s}" for s in serials)
    assert len(decoded) == 10
    # Another brand's product cannot be labelled from this portal.
    refused = client.post("/portal/labels", data={"product": OTHER_GTIN, "count": "1"})
    assert refused.status_code == 404
    # The look-up box finds one of the new items, with no trips yet.
    found = client.get("/portal", params={"serial": serials[0]}).text
    assert serials[0] in found and 'class="num trips">0<' in found
    assert "No item of yours" in client.get("/portal", params={"serial": "NOPE1"}).text
    # An item labelled elsewhere, known only from the devices' events, is found as well,
    # with the trip they recorded.
    now = datetime.now(UTC)
    store(db, "rvm-1", [
        event(kind, gtin=GTIN_CRATE, serial="ELSEWHERE7", ts=now - timedelta(days=days))
        for kind, days in (("sold", 2), ("returned", 1))
    ])  # fmt: skip
    found = client.get("/portal", params={"serial": "ELSEWHERE7"}).text
    assert "No item of yours" not in found
    assert "ELSEWHERE7" in found and 'class="num trips">1<' in found


def test_the_portal_lists_and_labels_grai_asset_types(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    # The pool's crate type has the same 14 digits as the brand's crate GTIN.
    asset_type = GTIN_CRATE.zfill(14)
    register_asset_type(db, asset_type)
    log_in(client, keys["brand"])
    portal = client.get("/portal").text
    assert f"<td>GRAI {asset_type}</td><td>Pool crate</td>" in portal
    assert f'<option value="8003{asset_type}">Pool crate (GRAI {asset_type})</option>' in portal
    answer = client.post(
        "/portal/labels", data={"product": "8003" + asset_type, "count": "4", "layout": "2x5"}
    )
    assert answer.status_code == 200, answer.text
    serials = [
        r[0]
        for r in db.execute(
            "SELECT serial FROM items WHERE item_class = %s", ("8003" + asset_type,)
        )
    ]
    (page,) = rendered_pages(answer.content)
    assert sorted(zxing_decode(page)) == sorted(f"{BASE}/8003/{asset_type}{s}" for s in serials)
    found = client.get("/portal", params={"serial": serials[0]}).text
    assert f"<td>GRAI {asset_type}{serials[0]}</td>" in found
    products = read_csv(client.get("/portal/products.csv"))
    assert {(p["gtin"], p["grai"]) for p in products} >= {("", asset_type), (asset_type, "")}
    bad = "8003" + asset_type[:13] + str((int(asset_type[13]) + 1) % 10)
    assert client.post("/portal/labels", data={"product": bad, "count": "1"}).status_code == 422


def row_numbers(page: str, packaging_type: str) -> tuple[int, int]:
    """(sold, returned) in the totals table's row of a packaging type."""
    start = page.index(f'<tr data-packaging-type="{packaging_type}">', page.index('id="totals"'))
    row = page[start : page.index("</tr>", start)]

    def cell(name: str) -> int:
        at = row.index(f'class="num {name}">') + len(f'class="num {name}">')
        return int(row[at : row.index("<", at)])

    return cell("sold"), cell("returned")


def reject_numbers(page: str) -> dict[tuple[str, str], int]:
    """(reason, packaging type) → rejected, from the page's rejects table."""
    rows = re.findall(
        r'data-reason="([^"]+)" data-packaging-type="([^"]+)">.*?class="num rejected">(\d+)<',
        page,
    )
    return {(reason, packaging): int(n) for reason, packaging, n in rows}


def read_csv(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_a_dead_letter_is_replayed_from_the_dashboard(
    client: TestClient,
    keys: dict[str, str],
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
) -> None:
    make_worker()
    late = event("returned")
    # From a device not registered yet: a dead letter, shown on the dashboard.
    hostile = b"<script>alert(1)</script>"  # a device's bytes are shown, never run
    publish_all(broker, topic_root, [("rvm-new", json.dumps(late).encode()), ("rvm-1", hostile)])
    wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") == 2, 30, "dead letters")
    log_in(client, keys["operator"])
    page = client.get("/dashboard").text
    assert "unknown_device" in page and "invalid_json" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    (dead_id,) = db.execute(
        "SELECT id FROM dead_letters WHERE reason = 'unknown_device'"
    ).fetchone() or (None,)
    assert f'name="ids" value="{dead_id}"' in page

    db.execute("INSERT INTO devices (id, site_id, kind) VALUES ('rvm-new', 'shop-1', 'rvm')")
    answer = client.post("/dashboard/dead-letters/replay", data={"ids": [str(dead_id)]})
    assert answer.status_code == 303 and "replayed=1" in answer.headers["location"]
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 1, 30, "the replayed event")
    assert str(db.execute("SELECT event_id FROM events").fetchone()[0]) == late["event_id"]  # type: ignore[index]
    assert f'name="ids" value="{dead_id}"' not in client.get("/dashboard").text
    # Nothing chosen: nothing sent, no error.
    none = client.post("/dashboard/dead-letters/replay", data={})
    assert none.status_code == 303 and "replayed=0" in none.headers["location"]


def test_rejects_by_reason_add_up_over_any_window_of_days(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    # (day in 2026, reason, qty): ragged days around whole months.
    scans = [("01-15", "damaged", 1), ("02-10", "damaged", 2), ("03-31", "not_empty", 4),
             ("04-02", "damaged", 8), ("04-30", "other", 16)]  # fmt: skip
    store(
        db,
        "rvm-1",
        [
            event("rejected", gtin=GTIN_COLA, reason=reason, qty=qty,
                  ts=datetime.fromisoformat(f"2026-{day}T12:00:00+00:00"))
            for day, reason, qty in scans
        ],
    )  # fmt: skip
    log_in(client, keys["operator"])

    def shown(start: str, end: str) -> dict[str, int]:
        query = {"from": f"2026-{start}", "to": f"2026-{end}", "tz": "UTC"}
        return {r["reason"]: int(r["rejected"])
                for r in read_csv(client.get("/dashboard/rejects.csv", params=query))}  # fmt: skip

    def expected(start: str, end: str) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for day, reason, qty in scans:
            if start <= day < end:
                totals[reason] += qty
        return dict(totals)

    for start, end in [("01-01", "05-01"), ("01-20", "04-01"), ("02-05", "02-20"),
                       ("03-31", "04-03"), ("02-01", "04-30"), ("01-16", "12-01")]:  # fmt: skip
        assert shown(start, end) == expected(start, end), (start, end)
