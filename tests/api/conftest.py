"""An API client on this test's own database, and keys for each role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from schemas.api_keys import Role, create_key
from schemas.settings import Settings
from tests.conftest import Broker


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, mqtt_url=broker.url, topic_root=topic_root)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def keys(db: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    """Authorization headers per role: admin, operator, brand 'fjord', brand 'other'."""
    made = {
        "admin": create_key(db, Role.ADMIN, "test admin"),
        "operator": create_key(db, Role.OPERATOR, "test operator"),
        "fjord": create_key(db, Role.BRAND, "test brand", brand="fjord"),
        "other": create_key(db, Role.BRAND, "test other brand", brand="other"),
    }
    return {who: {"Authorization": f"Bearer {key}"} for who, key in made.items()}
