"""Each role gets exactly what SPEC §9 allows: a matrix of endpoints by roles."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from schemas.api_keys import Role, create_key
from tests.factories import GTIN_COLA, event, seed_registry

# (method, path, body) → roles allowed; admin is allowed everything.
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/v1/packaging-types", None, {"operator", "brand"}),
    ("PUT", "/v1/packaging-types/pet-0.5l",
     {"name": "PET", "material": "PET"}, {"operator"}),
    ("GET", f"/v1/products/{GTIN_COLA}", None, {"operator", "brand"}),
    ("GET", "/v1/products", None, {"operator", "brand"}),
    ("PUT", "/v1/sites/shop-1", {"name": "Shop", "kind": "shop"}, {"operator"}),
    ("GET", "/v1/sites/shop-1", None, {"operator"}),
    ("PUT", "/v1/devices/rvm-1", {"site": "shop-1", "kind": "rvm"}, {"operator"}),
    ("GET", "/v1/devices", None, {"operator"}),
    ("GET", "/v1/events", None, {"operator", "brand"}),
    ("GET", "/v1/stats/return-rates", None, {"operator", "brand"}),
    ("GET", "/v1/stats/reuse", None, {"operator", "brand"}),
    ("GET", "/v1/stats/anomalies", None, {"operator", "brand"}),
    ("GET", "/v1/dead-letters", None, {"operator"}),
    ("POST", "/v1/dead-letters/replay", {"ids": [1]}, {"operator"}),
    ("GET", "/metrics", None, {"operator"}),
    ("POST", "/v1/devices/rvm-1/events", "EVENT", {"device"}),
]  # fmt: skip


@pytest.fixture
def role_headers(db: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    seed_registry(db, ["rvm-1"])  # products of brand 'fjord'
    keys = {
        "admin": create_key(db, Role.ADMIN, "a"),
        "operator": create_key(db, Role.OPERATOR, "o"),
        "brand": create_key(db, Role.BRAND, "b", brand="fjord"),
        "device": create_key(db, Role.DEVICE, "d", device_id="rvm-1"),
    }
    return {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_role_matrix(
    client: TestClient,
    role_headers: dict[str, dict[str, str]],
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
) -> None:
    for role, headers in [*role_headers.items(), ("nobody", {})]:
        content = json.dumps(event()) if body == "EVENT" else None
        response = client.request(
            method, path, headers=headers, json=None if body == "EVENT" else body, content=content
        )
        if role == "nobody":
            assert response.status_code == 401, (role, response.text)
        elif role == "admin" or role in allowed:
            assert response.status_code < 400, (role, response.status_code, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)


def test_health_is_public(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
