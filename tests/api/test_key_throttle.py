"""A client that keeps sending unknown API keys is slowed down: 429 with Retry-After,
for the API and the login form alike, while other clients carry on."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from api.key_throttle import FAILURES_ALLOWED, WINDOW_S
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker


def test_repeated_unknown_keys_get_429_with_retry_after(
    db: psycopg.Connection[Any], db_url: str, broker: Broker
) -> None:
    key = create_key(db, Role.OPERATOR, "op")
    app = create_app(Settings(database_url=db_url, mqtt_url=broker.url))
    guesser = TestClient(app, client=("203.0.113.7", 50000))
    other = TestClient(app, client=("198.51.100.2", 50000))
    with guesser, other:
        for i in range(FAILURES_ALLOWED):
            wrong = {"Authorization": f"Bearer lt_guess{i}"}
            assert guesser.get("/v1/packaging-types", headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {key}"}
        slowed = guesser.get("/v1/packaging-types", headers=right)
        assert_problem(slowed, 429, "unknown API keys from this client")
        assert 1 <= int(slowed.headers["retry-after"]) <= WINDOW_S
        login = guesser.post("/login", data={"key": key}, headers={"Origin": "http://testserver"})
        assert login.status_code == 429
        # Another client is not held up by this one's guesses.
        assert other.get("/v1/packaging-types", headers=right).status_code == 200
        assert (
            other.get("/v1/packaging-types", headers={"Authorization": "Bearer x"}).status_code
            == 401
        )
