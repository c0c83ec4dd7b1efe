"""`GET /health` reports the real database and broker."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from looptrack.local_services import LocalMosquitto
from schemas.broker_accounts import mosquitto_hash
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


def test_health_503_when_the_broker_refuses_the_apis_login(db_url: str, tmp_path: Path) -> None:
    """The broker answers on its port but refuses the API's password: the API cannot
    relay a single post, so it is not healthy, and says why. With the right password it
    is."""
    passwd = tmp_path / "passwd"
    passwd.write_text(f"looptrack-api:{mosquitto_hash('right')}\n")
    broker = LocalMosquitto(
        tmp_path / "mosquitto",
        extra_config=["allow_anonymous false", f"password_file {passwd}"],
    )
    broker.start()
    try:
        for password, status, expected in [
            ("wrong", 503, {"status": "unavailable", "database": "ok", "broker": "refused"}),
            ("right", 200, {"status": "ok", "database": "ok", "broker": "ok"}),
        ]:
            url = broker.url.replace("mqtt://", f"mqtt://looptrack-api:{password}@")
            with TestClient(create_app(Settings(database_url=db_url, mqtt_url=url))) as client:
                response = client.get("/health")
            body = response.json()
            error = body.pop("broker_error", None)
            assert (response.status_code, body) == (status, expected)
            if status == 503:
                assert error is not None and "authori" in error.lower(), error
            else:
                assert error is None
    finally:
        broker.stop()
