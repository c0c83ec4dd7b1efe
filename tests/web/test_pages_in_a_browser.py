"""Acceptance (issue 7): in headless chromium, against the real API and ingest worker, an
operator and a brand owner log in and read the numbers of a published scenario; the brand
sees no other brand's product anywhere; the label form gives a PDF whose codes decode.
Screenshots of the dashboard and the portal land in test-artifacts/screenshots/."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from playwright.sync_api import Page, expect

from schemas.api_keys import Role, create_key
from tests.conftest import Broker, start_publisher, wait_until
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    count,
    event,
    seed_registry,
    with_check_digit,
    write_replay_file,
)
from tests.qr import rendered_pages, zxing_decode
from tests.web.conftest import screenshot

OTHER_GTIN = with_check_digit("703801000777").zfill(14)
OTHER_NAME = "Secret Soda of Another Brand"
DEVICES = ["rvm-1", "rvm-2"]


# Serialised crates: their histories in time order, and the trips SPEC §7 counts in them.
CRATES = {
    "K1": ["filled", "sold", "returned", "filled", "sold", "returned"],  # 2 trips
    "K2": ["filled", "returned", "returned"],  # 1 trip, then a duplicate return
    "K3": ["sold"],  # on its first trip
}
CRATE_TRIPS = {"K1": 2, "K2": 1, "K3": 0}
REJECTS = {"damaged": 3, "not_empty": 2}


def publish_scenario(
    db: psycopg.Connection[Any], db_url: str, broker: Broker, topic_root: str, tmp_path: Path
) -> Counter[tuple[str, str]]:
    """Two brands' bottles and crates through the real worker; returns what was sent,
    counted as it is generated: (type, gtin) → events."""
    db.execute(
        "INSERT INTO products (item_class, packaging_type_id, brand, name)"
        " VALUES (%s, 'pet-0.5l', 'other', %s)",
        (OTHER_GTIN, OTHER_NAME),
    )
    plan: list[tuple[str, str, dict[str, str]]] = [("sold", GTIN_COLA, {})] * 40
    plan += [("returned", GTIN_COLA, {})] * 31 + [("returned", GTIN_CRATE, {})] * 12
    plan += [("sold", OTHER_GTIN, {})] * 20 + [("returned", OTHER_GTIN, {})] * 9
    for reason, n in REJECTS.items():
        plan += [("rejected", GTIN_COLA, {"reason": reason})] * n
    plan += [("rejected", OTHER_GTIN, {"reason": "other"})] * 4
    for serial, history in CRATES.items():
        plan += [(kind, GTIN_CRATE, {"serial": serial}) for kind in history]
    # One second apart, in plan order: a crate's events keep their order in time.
    start = datetime.now(UTC) - timedelta(seconds=len(plan) + 30)
    events = [
        (DEVICES[i % 2], event(kind, gtin=gtin, ts=start + timedelta(seconds=i), **extra))
        for i, (kind, gtin, extra) in enumerate(plan)
    ]
    publisher = start_publisher(
        write_replay_file(tmp_path / "scenario.jsonl", events), db_url, broker, topic_root
    )
    assert publisher.wait(60) == 0
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == len(plan), 30, "the scenario")
    return Counter((kind, gtin.zfill(14)) for kind, gtin, _ in plan)


def log_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()


def totals_row(page: Page, packaging_type: str) -> tuple[int, int]:
    row = page.locator(f'#totals tr[data-packaging-type="{packaging_type}"]')
    return int(row.locator(".sold").inner_text()), int(row.locator(".returned").inner_text())


def test_operator_and_brand_read_the_scenario_in_a_browser(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    live_api: str,
    page: Page,
    console_errors: list[str],
    tmp_path: Path,
) -> None:
    seed_registry(db, DEVICES)
    operator = create_key(db, Role.OPERATOR, "ops")
    brand = create_key(db, Role.BRAND, "fjord", brand="fjord")
    make_worker()
    sent = publish_scenario(db, db_url, broker, topic_root, tmp_path)
    cola, crate, other = GTIN_COLA.zfill(14), GTIN_CRATE.zfill(14), OTHER_GTIN

    # The operator: both brands' PET bottles under pet-0.5l, the crates, both RVMs.
    log_in(page, live_api, operator)
    expect(page).to_have_url(f"{live_api}/dashboard")
    expect(page.get_by_role("heading", name="Operator dashboard")).to_be_visible()
    assert totals_row(page, "pet-0.5l") == (
        sent[("sold", cola)] + sent[("sold", other)],
        sent[("returned", cola)] + sent[("returned", other)],
    )
    assert totals_row(page, "crate-24") == (sent[("sold", crate)], sent[("returned", crate)])
    for device in DEVICES:
        row = page.locator(f'tr[data-device="{device}"]')
        expect(row).to_be_visible()
        events_today = sum(1 for i in range(sum(sent.values())) if DEVICES[i % 2] == device)
        assert int(row.locator(".events-today").inner_text()) == events_today
    expect(page.get_by_role("img", name="Return rate per packaging type")).to_be_visible()
    for reason, n in REJECTS.items():
        cell = page.locator(f'#rejects tr[data-reason="{reason}"][data-packaging-type="pet-0.5l"]')
        assert int(cell.locator(".rejected").inner_text()) == n
    screenshot(page, "dashboard")

    # Reuse: the crates' trips and the duplicate return.
    page.get_by_role("link", name="Reuse, trips and duplicate returns →").click()
    crates = page.locator('#reuse tr[data-packaging-type="crate-24"]')
    assert int(crates.locator(".items").inner_text()) == len(CRATES)
    assert int(crates.locator(".trips").inner_text()) == sum(CRATE_TRIPS.values())
    expect(page.get_by_role("img", name="crate-24: items by number of trips")).to_be_visible()
    expect(page.locator("#duplicates").get_by_text("K2")).to_be_visible()
    screenshot(page, "reuse")
    page.goto(f"{live_api}/dashboard")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_api}/login")

    # The brand owner: its own numbers only, nowhere another brand's product.
    log_in(page, live_api, brand)
    expect(page).to_have_url(f"{live_api}/portal")
    assert totals_row(page, "pet-0.5l") == (sent[("sold", cola)], sent[("returned", cola)])
    assert totals_row(page, "crate-24") == (sent[("sold", crate)], sent[("returned", crate)])
    content = page.content()
    assert OTHER_NAME not in content and OTHER_GTIN not in content
    expect(page.locator(f'#products tr[data-gtin="{cola}"]')).to_be_visible()
    screenshot(page, "portal")

    # The label form: a PDF download whose QR codes decode to new items of the brand.
    page.get_by_label("Product").select_option(crate)
    page.get_by_label("Count").fill("8")
    page.get_by_label("Layout").select_option("4x10")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download PDF").click()
    pdf = Path(info.value.path()).read_bytes()
    (sheet,) = rendered_pages(pdf)
    serials = [r[0] for r in db.execute("SELECT serial FROM items WHERE item_class = %s", (crate,))]
    assert len(serials) == 8
    decoded = zxing_decode(sheet)
    assert sorted(urlsplit(uri).path for uri in decoded) == sorted(
        f"/01/{crate}/21/{serial}" for serial in serials
    )

    # The look-up box finds one of them.
    page.get_by_label("Serial").fill(serials[0])
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#lookup").get_by_text(serials[0])).to_be_visible()
    assert console_errors == []
