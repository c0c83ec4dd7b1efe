"""`GET /health` reports the real database and broker."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from schemas.settings import Settings
from tests.conftest import Broker, free_port


def test_health_ok_when_database_and_broker_answer(db_url: str, broker: Broker) -> None:
    settings = Settings(database_url=db_url, mqtt_url=broker.url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_503_names_the_unreachable_broker(db_url: str) -> None:
    settings = Settings(database_url=db_url, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unreachable"}
