"""Every bad statistics request gets a problem+json 422 saying what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.problem_assertions import assert_problem


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "must be before to"),
        ({"from": "2026-03-01", "to": "2026-03-01"}, "must be before to"),
        ({"from": "yesterday"}, "expected a date (2026-03-29) or an RFC 3339 date-time"),
        ({"from": "2026-03-01T10:00:00"}, "needs a UTC offset"),
        ({"from": "2026-03-01T10:07:00Z"}, "must fall on a quarter hour"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "at most 3660 days"),
        ({"bucket": "hour"}, "bucket"),
        ({"packaging_type": "Not A Slug"}, "packaging_type"),
    ],
)
def test_bad_return_rate_requests(
    client: TestClient, keys: dict[str, Any], params: dict[str, str], detail: str
) -> None:
    response = client.get("/v1/stats/return-rates", params=params, headers=keys["operator"])
    assert_problem(response, 422, detail)


def test_stats_need_a_key_and_a_statistics_role(client: TestClient) -> None:
    assert_problem(client.get("/v1/stats/return-rates"), 401, "missing API key")
