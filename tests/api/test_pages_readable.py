"""Pages people can read (issue 22.12), over HTTP without a browser: the pages' times are
in LOOPTRACK_TIMEZONE unless the page names another zone, each with its zone; a return
rate above 100 % is explained in one line, only where one is shown; a packaging type has
one colour on the dashboard and on the portal, in its line and in its histogram. (What a
person sees of it in chromium: tests/web/test_readable_pages_in_a_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.test_pages import log_in
from tests.conftest import Broker
from tests.factories import GTIN_COLA, GTIN_CRATE, event, seed_registry, with_check_digit
from tests.storing import store

ZONE = "Europe/Oslo"
GTIN_CAN = with_check_digit("703801000444")  # brand "other"'s only product
# Sold and returned per packaging type in the scenario, and so its return rate.
SOLD = {"pet-0.5l": 10, "can-0.33l": 5, "crate-24": 1}
RETURNED = {"pet-0.5l": 4, "can-0.33l": 1, "crate-24": 3}  # crate-24: 300 %
# Serialised crates: K2 comes back twice without a sale between (a duplicate return).
CRATES = {"K1": ["filled", "sold", "returned"], "K2": ["filled", "returned", "returned"]}
# A dead letter received in summer: shown in CEST (UTC+2) in Oslo.
DEAD_LETTER_AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
DEAD_LETTER_SHOWN = "2026-07-01 14:00:00 CEST"
# Crate K1 was labelled here in winter: shown in CET (UTC+1), to the minute.
COMMISSIONED_AT = datetime(2026, 1, 15, 8, 30, tzinfo=UTC)
COMMISSIONED_SHOWN = "2026-01-15 09:30 CET"
OVER_FULL = "Return rates above 100 % include returns of units sold before the period."


def seed_scenario(db: psycopg.Connection[Any]) -> dict[str, Any]:
    """Three packaging types, two brands' products and the events above, stored as the
    worker stores them an hour ago; returns the keys and what the pages must show."""
    seed_registry(db, ["rvm-1"])
    # Registered after the others and first by id: it shifts every type's place on the
    # dashboard, which shows it, and not on brand fjord's portal, which does not.
    db.execute(
        "INSERT INTO packaging_types (id, name, material, deposit, weight_g)"
        " VALUES ('can-0.33l', 'Can 0.33 l', 'aluminium', 200, 13)"
    )
    db.execute(
        "INSERT INTO products (item_class, packaging_type_id, brand, name)"
        " VALUES (%s, 'can-0.33l', 'other', 'Other Can')",
        (GTIN_CAN.zfill(14),),
    )
    plan: list[tuple[str, str, dict[str, str]]] = []
    plan += [("sold", GTIN_COLA, {})] * SOLD["pet-0.5l"]
    plan += [("returned", GTIN_COLA, {})] * RETURNED["pet-0.5l"]
    plan += [("sold", GTIN_CAN, {})] * SOLD["can-0.33l"]
    plan += [("returned", GTIN_CAN, {})] * RETURNED["can-0.33l"]
    for serial, history in CRATES.items():
        plan += [(kind, GTIN_CRATE, {"serial": serial}) for kind in history]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = [
        event(kind, gtin=gtin, ts=start + timedelta(seconds=i), **extra)
        for i, (kind, gtin, extra) in enumerate(plan)
    ]
    store(db, "rvm-1", events)
    db.execute(
        "INSERT INTO items (item_class, serial, commissioned_at) VALUES (%s, 'K1', %s)",
        (GTIN_CRATE.zfill(14), COMMISSIONED_AT),
    )
    latest = start + timedelta(seconds=len(plan) - 1)
    db.execute(
        "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
        " payload_size, payload_sha256) VALUES (%s, 'looptrack/v1/devices/rvm-9/events',"
        " 'rvm-9', 'unknown_device', 'no such device', '{}', 2, %s)",
        (DEAD_LETTER_AT, b"\0" * 32),
    )
    return {
        "operator": create_key(db, Role.OPERATOR, "op"),
        "fjord": create_key(db, Role.BRAND, "fjord", brand="fjord"),
        "other": create_key(db, Role.BRAND, "other", brand="other"),
        # The worker takes a message in just after its latest event (tests.storing).
        "last_seen": latest + timedelta(seconds=1),
        # K2's second return, the last event of the plan.
        "duplicate_at": latest,
    }


def in_zone(instant: datetime, zone: str) -> str:
    """`instant` as the pages must write it (written out here, not with the pages' code)."""
    local = instant.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


@pytest.fixture
def scenario(db: psycopg.Connection[Any]) -> dict[str, Any]:
    return seed_scenario(db)


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db_url, mqtt_url=broker.url, topic_root=topic_root, timezone=ZONE
    )
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def cell(html: str, css_class: str) -> list[str]:
    return re.findall(rf'<td class="{css_class}">([^<]*)</td>', html)


def series_colours(html: str) -> dict[str, str]:
    """The line chart's colour of each series (packaging type), as its legend shows it."""
    return {
        name: colour
        for colour, name in re.findall(r'fill="([^"]+)"/><text x="14">([^<]+)</text>', html)
    }


def histogram_colours(html: str) -> dict[str, str]:
    """The bars' colour of each packaging type's histogram on a reuse page."""
    found = re.findall(
        r'aria-label="([^":]+): items by number of trips".*?<rect [^>]*fill="([^"]+)"', html
    )
    return dict(found)


def test_times_are_in_the_configured_zone_and_name_it(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    log_in(client, scenario["operator"])
    page = client.get("/dashboard").text
    # The period form starts at LOOPTRACK_TIMEZONE, and the window is said in it.
    assert re.search(rf"<option selected>{ZONE}</option>", page)
    assert re.search(
        r"From \d{4}-\d\d-\d\d 00:00 CES?T to \d{4}-\d\d-\d\d 00:00 CES?T \(not included\), "
        rf"per day in {ZONE}\.",
        page,
    )
    assert cell(page, "last-seen") == [in_zone(scenario["last_seen"], ZONE)]
    assert cell(page, "received-at") == [DEAD_LETTER_SHOWN]
    # Another zone asked for: the times follow it.
    page = client.get("/dashboard", params={"tz": "America/Sao_Paulo"}).text
    assert cell(page, "received-at") == ["2026-07-01 09:00:00 -03"]

    reuse = client.get("/dashboard/reuse").text
    assert cell(reuse, "ts") == [in_zone(scenario["duplicate_at"], ZONE)]


def test_the_portals_times_name_their_zone(client: TestClient, scenario: dict[str, Any]) -> None:
    log_in(client, scenario["fjord"])
    page = client.get("/portal", params={"serial": "K1"}).text
    assert re.search(rf"00:00 CES?T \(not included\), per month in {ZONE}\.", page)
    assert cell(page, "commissioned-at") == [COMMISSIONED_SHOWN]
    # K2 is known from devices' events alone: no commissioning time.
    page = client.get("/portal", params={"serial": "K2"}).text
    assert cell(page, "commissioned-at") == ["\N{EN DASH}"]
    reuse = client.get("/portal/reuse").text
    assert cell(reuse, "ts") == [in_zone(scenario["duplicate_at"], ZONE)]


def test_a_return_rate_above_100_percent_is_explained_where_one_is_shown(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    log_in(client, scenario["operator"])
    page = client.get("/dashboard").text
    assert "300.0 %" in page and page.count(OVER_FULL) == 1
    log_in(client, scenario["fjord"])
    assert client.get("/portal").text.count(OVER_FULL) == 1
    log_in(client, scenario["other"])  # its can: 1 of 5 back, 20 %
    page = client.get("/portal").text
    assert "20.0 %" in page and OVER_FULL not in page


def test_a_packaging_type_has_one_colour_on_the_dashboard_and_the_portal(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    log_in(client, scenario["operator"])
    dashboard = series_colours(client.get("/dashboard").text)
    dashboard_reuse = histogram_colours(client.get("/dashboard/reuse").text)
    log_in(client, scenario["fjord"])
    portal = series_colours(client.get("/portal").text)
    portal_reuse = histogram_colours(client.get("/portal/reuse").text)

    assert set(dashboard) == {"can-0.33l", "crate-24", "pet-0.5l"}
    assert set(portal) == {"crate-24", "pet-0.5l"}
    assert portal == {t: dashboard[t] for t in portal}
    assert len(set(dashboard.values())) == 3  # three types, three colours
    # The crates' histogram is drawn in the crates' colour, on both reuse pages.
    assert dashboard_reuse == portal_reuse == {"crate-24": dashboard["crate-24"]}


def test_the_histograms_name_their_axes(client: TestClient, scenario: dict[str, Any]) -> None:
    log_in(client, scenario["operator"])
    page = client.get("/dashboard/reuse").text
    titles = re.findall(r'<text class="axis-title"[^>]*>([^<]*)</text>', page)
    assert titles == ["Items", "Trips"]


def test_the_period_form_sent_without_dates_shows_the_last_30_days_in_its_zone(
    client: TestClient, scenario: dict[str, Any]
) -> None:
    """The form sends its empty date fields as `from=&to=`: not given, as before it was
    sent (a 422 "to '': expected a date" before), and an empty zone is the configured one."""
    log_in(client, scenario["operator"])
    answer = client.get("/dashboard", params={"from": "", "to": "", "bucket": "day", "tz": "UTC"})
    assert answer.status_code == 200
    assert "per day in UTC." in answer.text and cell(answer.text, "received-at") == [
        "2026-07-01 12:00:00 UTC"
    ]
    answer = client.get("/dashboard", params={"from": "", "to": "", "tz": ""})
    assert answer.status_code == 200 and f"per day in {ZONE}." in answer.text
    log_in(client, scenario["fjord"])
    answer = client.get("/portal", params={"from": "", "to": "", "bucket": "month", "tz": ZONE})
    assert answer.status_code == 200 and f"per month in {ZONE}." in answer.text
