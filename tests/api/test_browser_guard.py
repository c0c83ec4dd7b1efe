"""What a browser gets and may send: security headers on every answer (the pages never
framed, never cached, loading nothing but their own style sheet), redirects that never
name a host the client made up, and no form posted to the pages from another origin."""

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

ORIGIN = "http://testserver"  # where TestClient's requests come from


@pytest.fixture
def client(db_url: str, broker: Broker) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, mqtt_url=broker.url)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def log_in(client: TestClient, db: psycopg.Connection[Any]) -> str:
    key = create_key(db, Role.OPERATOR, "op")
    answer = client.post("/login", data={"key": key}, headers={"Origin": ORIGIN})
    assert answer.status_code == 303, answer.text
    return key


def test_pages_are_never_framed_cached_or_sniffed_and_load_only_their_own_files(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    key = log_in(client, db)
    for path in ("/login", "/dashboard"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, path
        assert "script-src" not in policy  # no script may run on them at all
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
    api = client.get("/v1/packaging-types", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert client.get("/docs").headers["x-frame-options"] == "DENY"


def test_a_trailing_slash_redirect_never_names_the_clients_host(client: TestClient) -> None:
    answer = client.get("/login/", headers={"Host": "evil.example"})
    assert answer.status_code in (307, 308)
    assert answer.headers["location"] == "/login"


@pytest.mark.parametrize(
    "origin",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8443"},  # same host, another port
        {"Origin": "null"},  # a sandboxed frame
        {"Referer": "http://evil.example/page"},  # no Origin: the Referer decides
    ],
)
def test_a_form_posted_from_another_origin_is_refused(
    client: TestClient, db: psycopg.Connection[Any], origin: dict[str, str]
) -> None:
    key = create_key(db, Role.OPERATOR, "op")
    login = client.post("/login", data={"key": key}, headers=origin)
    assert login.status_code == 403
    assert login.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in login.headers  # nobody logged in
    log_in(client, db)
    replay = client.post("/dashboard/dead-letters/replay", data={"ids": "1"}, headers=origin)
    assert replay.status_code == 403
    assert "post it from the page itself" in replay.json()["detail"]


def test_a_form_from_the_page_itself_and_a_client_naming_no_origin_are_accepted(
    client: TestClient, db: psycopg.Connection[Any]
) -> None:
    key = create_key(db, Role.OPERATOR, "op")
    for headers in ({"Origin": ORIGIN}, {"Referer": f"{ORIGIN}/login"}, {}):
        client.cookies.clear()
        assert client.post("/login", data={"key": key}, headers=headers).status_code == 303
