"""`GET /metrics`: Prometheus text with request latency and the workers' ingest counters."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.api.problem_assertions import assert_problem


def test_metrics(client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO ingest_counters (worker, received, stored, duplicates, dead_lettered)"
               " VALUES ('w1', 125, 120, 3, 2)")  # fmt: skip
    client.get("/v1/packaging-types", headers=keys["operator"])
    response = client.get("/metrics", headers=keys["operator"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'looptrack_ingest_events_total{outcome="received",worker="w1"} 125.0' in text
    assert 'looptrack_ingest_events_total{outcome="stored",worker="w1"} 120.0' in text
    assert 'looptrack_ingest_events_total{outcome="duplicate",worker="w1"} 3.0' in text
    assert 'looptrack_ingest_events_total{outcome="dead_lettered",worker="w1"} 2.0' in text
    assert (
        'looptrack_http_request_duration_seconds_count{method="GET",'
        'route="/v1/packaging-types",status="200"} 1.0' in text
    )
    assert_problem(client.get("/metrics"), 401, "missing API key")
    assert_problem(client.get("/metrics", headers=keys["fjord"]), 403, "role brand")
