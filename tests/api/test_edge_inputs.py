"""Inputs at and past the edges answer 422 naming the parameter, never 500: time
parameters outside the range every endpoint and page can compute with (Python's datetime
overflowed on a zone's offset or the default window), and NUL characters, which no
PostgreSQL text can hold (issue 17, item 7)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.time_window import IN_RANGE
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.api.test_error_pages import BROWSER, error_page
from tests.api.test_pages import log_in
from tests.conftest import Broker

RANGE_TEXT = "must lie between 1970-01-01T00:00:00Z and 9999-01-01T00:00:00Z"
# Every JSON endpoint taking a time window: its path and its (from, to) parameters.
WINDOWED = [
    ("/v1/stats/return-rates", "from", "to"),
    ("/v1/stats/anomalies", "from", "to"),
    ("/v1/events", "from", "to"),
    ("/v1/epcis/events", "GE_eventTime", "LT_eventTime"),
]
# Bounds out of range, as (which bound, value): before year 1 in UTC, after year 9999 in
# UTC, and inside datetime's range but too near its ends to step a window from.
OUT_OF_RANGE = [
    ("to", "0001-01-01T00:00:00Z"),
    ("to", "0001-01-01T00:00:00+14:00"),
    ("from", "9999-12-31T00:00:00-23:45"),
    ("to", "9999-12-31T00:00:00Z"),
    ("from", "1969-12-31T23:45:00Z"),
]


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    # The pages' login answers a redirect, kept as it is.
    settings = Settings(database_url=db_url, mqtt_url=broker.url, topic_root=topic_root)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def page_keys(db: psycopg.Connection[Any]) -> dict[str, str]:
    return {
        "operator": create_key(db, Role.OPERATOR, "pages operator"),
        "brand": create_key(db, Role.BRAND, "pages brand", brand="fjord"),
    }


def test_the_range_is_said_as_the_constants_say() -> None:
    assert IN_RANGE == RANGE_TEXT


@pytest.mark.parametrize(("bound", "value"), OUT_OF_RANGE)
@pytest.mark.parametrize(("path", "from_name", "to_name"), WINDOWED)
def test_a_time_out_of_range_is_a_422_naming_the_parameter(
    client: TestClient,
    keys: dict[str, Any],
    path: str,
    from_name: str,
    to_name: str,
    bound: str,
    value: str,
) -> None:
    name = from_name if bound == "from" else to_name
    answer = client.get(path, params={name: value}, headers=keys["operator"])
    assert_problem(answer, 422, RANGE_TEXT)
    assert answer.json()["detail"].startswith(name), answer.json()


@pytest.mark.parametrize(
    "params",
    [
        {"to": "0001-01-01"},
        {"from": "0001-01-01", "to": "0001-01-31"},
        {"to": "9999-12-31"},
        # Local midnight of a date in range, but outside it in UTC.
        {"to": "9999-01-01", "tz": "America/Adak"},
        {"from": "1970-01-01", "to": "1970-01-31", "tz": "Asia/Tokyo"},
    ],
)
def test_a_date_out_of_range_for_return_rates_is_a_422(
    client: TestClient, keys: dict[str, Any], params: dict[str, str]
) -> None:
    answer = client.get("/v1/stats/return-rates", params=params, headers=keys["operator"])
    assert_problem(answer, 422, RANGE_TEXT)


@pytest.mark.parametrize(("path", "from_name", "to_name"), WINDOWED)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-31T00:00:00Z"),
        ("9998-12-01T00:00:00Z", "9999-01-01T00:00:00Z"),
        (None, "1970-01-01T00:00:00Z"),  # the default window reaches before the range
    ],
    ids=["first-month", "last-month", "default-before-first"],
)
def test_the_ends_of_the_range_are_answered(
    client: TestClient,
    keys: dict[str, Any],
    path: str,
    from_name: str,
    to_name: str,
    start: str | None,
    end: str,
) -> None:
    params = {to_name: end} if start is None else {from_name: start, to_name: end}
    answer = client.get(path, params=params, headers=keys["operator"])
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "params",
    [
        {"to": "0001-01-01"},
        {"from": "9999-12-31T00:00:00-23:45"},
        {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
    ],
)
@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/rejects.csv", "/portal"])
def test_a_page_asked_for_a_time_out_of_range_answers_a_422_page(
    client: TestClient, page_keys: dict[str, str], path: str, params: dict[str, str]
) -> None:
    section = "/" + path.split("/")[1]
    log_in(client, page_keys["operator" if section == "/dashboard" else "brand"])
    answer = client.get(path, params=params, headers=BROWSER)
    assert RANGE_TEXT in error_page(answer, 422, back=section)


@pytest.mark.parametrize("section", ["/dashboard", "/portal"])
def test_the_pages_show_the_last_month_of_the_range(
    client: TestClient, page_keys: dict[str, str], section: str
) -> None:
    # The rejects' day and month steps from the window's end stay inside datetime.
    log_in(client, page_keys["operator" if section == "/dashboard" else "brand"])
    for tz in ("UTC", "Pacific/Kiritimati"):
        params = {"from": "9998-12-01", "to": "9999-01-01", "tz": tz}
        answer = client.get(section, params=params, headers=BROWSER)
        assert answer.status_code == 200, answer.text[-2000:]


def test_a_nul_in_the_portals_serial_is_a_422_page(
    client: TestClient, page_keys: dict[str, str]
) -> None:
    log_in(client, page_keys["brand"])
    answer = client.get("/portal?serial=%00", headers=BROWSER)
    assert "serial: contains a NUL character" in error_page(answer, 422, back="/portal")
    # Asked for without text/html, the same problem as JSON.
    assert_problem(client.get("/portal?serial=7KQ%002"), 422, "serial: contains a NUL character")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/events?device_id=rvm%00", "device_id"),
        ("/v1/stats/return-rates?tz=Europe/Oslo%00", "tz"),
        ("/v1/dead-letters?reason=schema%00", "reason"),
        ("/v1/products/%007038010001239", "gtin"),
        ("/v1/items/07038010001239/7KQ%00", "serial"),
        ("/v1/epcis/events?EQ_bizStep=%00", "EQ_bizStep"),
        ("/v1/events?x%00=1", "x\\x00"),
    ],
)
def test_a_nul_in_any_path_or_query_parameter_is_a_422_naming_it(
    client: TestClient, keys: dict[str, Any], url: str, name: str
) -> None:
    assert_problem(client.get(url, headers=keys["operator"]), 422, f"{name}: contains a NUL")
