"""Statistics windows that add up hourly or 15-minute counts run under a time limit
(LOOPTRACK_STATS_TIMEOUT_MS): over it, a 422 problem+json naming the windows answered fast;
the pages say so in place of the figures and show the rest. Whole days in the rollup zone
have no limit.

A statement is made to outlast the limit deterministically by another transaction holding
the table it reads locked: it waits for the lock until the limit cancels it. One test
instead reads enough rows to outlast a 1 ms limit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.stats.return_rates import Bucket, return_rates_json
from api.stats.time_limit import SlowWindow
from api.time_window import Window
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker
from tests.factories import GTIN_COLA, seed_registry
from tests.table_locks import locked

LIMIT_MS = 300
RETURN_RATES = "/v1/stats/return-rates"
MATERIALS = "/v1/stats/materials"
# A week of whole local days in Asia/Kolkata (+05:30): not whole UTC hours in buckets, so
# hourly counts and the quarter hours around each local midnight.
KOLKATA_WEEK = {"from": "2026-03-02", "to": "2026-03-09", "tz": "Asia/Kolkata"}
# The whole UTC days around it: the day rollups' zone in the tests is UTC.
UTC_DAYS_AROUND = {"from": "2026-03-01", "to": "2026-03-09", "tz": "UTC"}
FAST_DAYS = {
    "rollup": "day",
    "tz": "UTC",
    "bounds": "local-midnight",
    "site_id": True,
    "query": UTC_DAYS_AROUND,
}


def make_client(db_url: str, broker: Broker, topic_root: str, limit_ms: int) -> TestClient:
    settings = Settings(
        database_url=db_url, mqtt_url=broker.url, topic_root=topic_root, stats_timeout_ms=limit_ms
    )
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    with make_client(db_url, broker, topic_root, LIMIT_MS) as test_client:
        yield test_client


@pytest.fixture
def operator(db: psycopg.Connection[Any]) -> str:
    seed_registry(db, ["rvm-1"])
    return create_key(db, Role.OPERATOR, "op")


def slow_window(response: Any, limit_ms: int, fast: list[dict[str, Any]], *details: str) -> None:
    assert_problem(response, 422, f"took longer than {limit_ms} ms")
    body = response.json()
    assert body["type"] == "/problems/slow-window"
    assert body["title"] == HTTPStatus(422).phrase
    assert body["timeout_ms"] == limit_ms
    assert body["fast_windows"] == fast
    assert "LOOPTRACK_STATS_TIMEOUT_MS" in body["detail"]
    for part in details:
        assert part in body["detail"], body["detail"]


def test_a_window_of_hours_and_quarter_hours_over_the_limit_is_a_422_naming_fast_windows(
    client: TestClient, operator: str, db_url: str
) -> None:
    headers = {"Authorization": f"Bearer {operator}"}
    with locked(db_url, "event_counts_15m"):
        answer = client.get(RETURN_RATES, params=KOLKATA_WEEK, headers=headers)
    slow_window(answer, LIMIT_MS, [FAST_DAYS], "hourly and 15-minute counts", "whole days in UTC")
    # The connection it ran on is usable: the same request answers once the lock is gone.
    assert client.get(RETURN_RATES, params=KOLKATA_WEEK, headers=headers).json() == {"rows": []}


def test_a_site_filter_outside_the_rollup_zone_over_the_limit_names_both_fast_windows(
    client: TestClient, operator: str, db_url: str
) -> None:
    params = {"from": "2026-03-02", "to": "2026-03-09", "tz": "Europe/Oslo", "site_id": "shop-1"}
    with locked(db_url, "event_counts_15m"):
        answer = client.get(
            RETURN_RATES, params=params, headers={"Authorization": f"Bearer {operator}"}
        )
    # Oslo midnights are 23:00 UTC in winter: whole UTC days and hours around them.
    days = {**FAST_DAYS, "query": {"from": "2026-03-01", "to": "2026-03-09", "tz": "UTC"}}
    hours = {
        "rollup": "hour",
        "tz": None,
        "bounds": "whole-hour",
        "site_id": False,
        "query": {"from": "2026-03-01T23:00:00Z", "to": "2026-03-08T23:00:00Z",
                  "tz": "Europe/Oslo"},
    }  # fmt: skip
    slow_window(answer, LIMIT_MS, [days, hours], "15-minute counts", "leave out site_id")


def test_material_flows_over_the_limit_are_a_422_naming_fast_windows(
    client: TestClient, operator: str, db_url: str
) -> None:
    with locked(db_url, "material_counts_15m"):
        answer = client.get(
            MATERIALS, params=KOLKATA_WEEK, headers={"Authorization": f"Bearer {operator}"}
        )
    slow_window(answer, LIMIT_MS, [FAST_DAYS], "material flows", "whole days in UTC")


def test_whole_days_in_the_rollup_zone_have_no_limit(
    client: TestClient, operator: str, db_url: str, db: psycopg.Connection[Any]
) -> None:
    db.execute(
        "INSERT INTO event_counts_15m VALUES ('2026-03-03 10:00Z', 'shop-1', %s, 'sold', 4, 4)",
        (GTIN_COLA.zfill(14),),
    )
    db.execute("SELECT rebuild_return_counts_daily()")
    headers = {"Authorization": f"Bearer {operator}"}
    days = {**UTC_DAYS_AROUND, "bucket": "total"}
    # They read no hour or quarter-hour counts...
    with locked(db_url, "event_counts_15m"), locked(db_url, "material_counts_15m"):
        rates = client.get(RETURN_RATES, params=days, headers=headers)
        with_site = client.get(RETURN_RATES, params={**days, "site_id": "shop-1"}, headers=headers)
        materials = client.get(MATERIALS, params=days, headers=headers)
    for answer in (rates, with_site):
        assert answer.status_code == 200, answer.text
        assert [(r["packaging_type"], r["sold"]) for r in answer.json()["rows"]] == [
            ("pet-0.5l", 4)
        ]
    assert materials.status_code == 200, materials.text
    # ...and wait as long as it takes for the day counts: past the limit, no 422.
    with locked(db_url, "return_counts_daily", release_after_s=3 * LIMIT_MS / 1000):
        waited = client.get(RETURN_RATES, params=days, headers=headers)
    assert waited.json() == rates.json()


def test_reading_more_than_the_limit_allows_is_a_422_and_whole_days_still_answer(
    db_url: str, broker: Broker, topic_root: str, operator: str, db: psycopg.Connection[Any]
) -> None:
    # A sale every quarter hour for a year at one shop: the 15-minute path of a site filter
    # outside the rollup zone reads 35,040 rows, far more than 1 ms allows.
    db.execute(
        "INSERT INTO event_counts_15m"
        " SELECT TIMESTAMPTZ '2025-03-01 00:00Z' + i * INTERVAL '15 minutes', 'shop-1', %s,"
        "        'sold', 1, 1"
        " FROM generate_series(0, 365 * 96 - 1) AS i",
        (GTIN_COLA.zfill(14),),
    )
    db.execute("SELECT rebuild_return_counts_daily()")
    headers = {"Authorization": f"Bearer {operator}"}
    year = {"from": "2025-03-01", "to": "2026-03-01", "bucket": "total", "site_id": "shop-1"}
    with make_client(db_url, broker, topic_root, 1) as client:
        slow = client.get(RETURN_RATES, params={**year, "tz": "Europe/Oslo"}, headers=headers)
        fast = client.get(RETURN_RATES, params={**year, "tz": "UTC"}, headers=headers)
    assert_problem(slow, 422, "took longer than 1 ms")
    assert fast.status_code == 200, fast.text
    assert [r["sold"] for r in fast.json()["rows"]] == [365 * 96]


def test_after_a_refusal_the_transaction_goes_on_with_its_own_statement_timeout(
    db_url: str,
) -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    week = Window(
        datetime(2026, 3, 2, tzinfo=kolkata).astimezone(UTC),
        datetime(2026, 3, 9, tzinfo=kolkata).astimezone(UTC),
        kolkata,
    )
    filters: dict[str, Any] = {"packaging_type": None, "brand": None, "site_id": None}
    with psycopg.connect(db_url) as conn:  # one transaction, as a request has
        conn.execute("SET statement_timeout = '7s'")
        with locked(db_url, "event_counts_15m"), pytest.raises(SlowWindow):
            return_rates_json(conn, week, Bucket.DAY, **filters, timeout_ms=LIMIT_MS)
        assert conn.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("SHOW statement_timeout").fetchone() == ("7s",)
        assert return_rates_json(conn, week, Bucket.DAY, **filters, timeout_ms=LIMIT_MS) == (
            '{"rows" : []}'
        )
        assert conn.execute("SHOW statement_timeout").fetchone() == ("7s",)


def test_a_statement_cancelled_by_someone_else_is_not_called_slow(db_url: str) -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    week = Window(
        datetime(2026, 3, 2, tzinfo=kolkata).astimezone(UTC),
        datetime(2026, 3, 9, tzinfo=kolkata).astimezone(UTC),
        kolkata,
    )
    with psycopg.connect(db_url) as conn, locked(db_url, "event_counts_15m"):
        pid = conn.info.backend_pid

        def cancel() -> None:
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_cancel_backend(%s)", (pid,))

        canceller = threading.Timer(0.5, cancel)
        canceller.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                return_rates_json(
                    conn, week, Bucket.DAY, packaging_type=None, brand=None, site_id=None,
                    timeout_ms=60_000,
                )  # fmt: skip
        finally:
            canceller.join()


def log_in(client: TestClient, key: str) -> None:
    client.cookies.clear()
    assert client.post("/login", data={"key": key}).status_code == 303


@pytest.mark.parametrize(
    ("page", "table", "figures"),
    [
        ("/dashboard", "event_counts_15m", 'id="return-rates"'),
        ("/dashboard/materials", "material_counts_15m", 'id="flows"'),
        ("/portal", "event_counts_15m", 'id="return-rates"'),
        ("/portal/materials", "material_counts_15m", 'id="content"'),
    ],
)
def test_a_page_over_the_limit_says_so_and_links_the_whole_days_around_it(
    client: TestClient,
    db: psycopg.Connection[Any],
    db_url: str,
    page: str,
    table: str,
    figures: str,
) -> None:
    seed_registry(db, ["rvm-1"])
    section = "/portal" if page.startswith("/portal") else "/dashboard"
    key = create_key(db, *((Role.BRAND, "b") if section == "/portal" else (Role.OPERATOR, "o")),
                     **({"brand": "fjord"} if section == "/portal" else {}))  # fmt: skip
    log_in(client, key)
    with locked(db_url, table):
        answer = client.get(page, params={**KOLKATA_WEEK, "bucket": "day"})
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert 'class="error slow-window" role="alert"' in html
    assert "could not be counted fast enough" in html
    assert "Whole days in UTC: 2026-03-01 to 2026-03-08" in html
    assert 'href="?from=2026-03-01&amp;to=2026-03-09&amp;tz=UTC&amp;bucket=day"' in html
    assert "Not counted: see above." in html
    assert figures in html  # the page itself, with its other sections
    assert 'aria-label="Period"' in html
    # Not tried again by itself: the dashboard's reload every 30 s is off, and back on for
    # the whole days.
    assert 'http-equiv="refresh"' not in html
    days = client.get(page, params={**UTC_DAYS_AROUND, "bucket": "day"}).text
    assert "slow-window" not in days
    assert ('http-equiv="refresh"' in days) is (page == "/dashboard")


def test_a_csv_over_the_limit_is_the_same_422(
    client: TestClient, db: psycopg.Connection[Any], db_url: str, operator: str
) -> None:
    log_in(client, operator)
    with locked(db_url, "event_counts_15m"):
        as_json = client.get("/dashboard/return-rates.csv", params=KOLKATA_WEEK)
        as_page = client.get(
            "/dashboard/return-rates.csv", params=KOLKATA_WEEK, headers={"Accept": "text/html"}
        )
    slow_window(as_json, LIMIT_MS, [FAST_DAYS])
    assert as_page.status_code == 422
    assert "whole days in UTC" in as_page.text


def test_the_openapi_document_describes_the_slow_window_problem(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path in (RETURN_RATES, MATERIALS):
        response = document["paths"][path]["get"]["responses"]["422"]
        assert "slow-window" in response["description"]
        schema = response["content"]["application/problem+json"]["schema"]
        assert "$defs" not in str(schema)
        fast = schema["properties"]["fast_windows"]["anyOf"][0]["items"]["properties"]
        assert set(fast) == {"rollup", "tz", "bounds", "site_id", "query"}
        assert "timeout_ms" in schema["properties"]
