"""API key lifecycle (issue 22.1): an expired key is refused like a revoked one and its
pages' sessions end; a key's last use is written at most once per LAST_USED_PRECISION_S,
never in a request's way; operators manage keys over /v1/keys."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from api.keys.last_used import KEY_USES
from schemas.api_keys import LAST_USED_PRECISION_S, Role, create_key
from schemas.settings import Settings
from tests.api.problem_assertions import assert_problem
from tests.conftest import Broker
from tests.factories import seed_registry


@pytest.fixture
def client(db_url: str, broker: Broker, topic_root: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, mqtt_url=broker.url, topic_root=topic_root)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


ROLES = ("admin", "operator", "brand", "device")


@pytest.fixture
def keys(db: psycopg.Connection[Any]) -> dict[str, str]:
    """Keys per role, with the registry their bindings need (brand fjord, device rvm-1)."""
    seed_registry(db, ["rvm-1"])
    return {
        "admin": create_key(db, Role.ADMIN, "test admin"),
        "operator": create_key(db, Role.OPERATOR, "test operator"),
        "brand": create_key(db, Role.BRAND, "test brand", brand="fjord"),
        "device": create_key(db, Role.DEVICE, "test device", device_id="rvm-1"),
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def key_id(db: psycopg.Connection[Any], name: str) -> uuid.UUID:
    row = db.execute("SELECT id FROM api_keys WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def expire(db: psycopg.Connection[Any], name: str) -> datetime:
    """Let the key `name` expire a minute ago (made two hours ago); returns its expiry."""
    row = db.execute(
        "UPDATE api_keys SET created_at = now() - interval '2 hours',"
        " expires_at = date_trunc('second', now()) - interval '1 minute'"
        " WHERE name = %s RETURNING expires_at",
        (name,),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def last_used(db: psycopg.Connection[Any], name: str) -> datetime | None:
    row = db.execute("SELECT last_used_at FROM api_keys WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


# -- expiry --------------------------------------------------------------------------------


def test_an_expired_key_is_refused_like_a_revoked_one(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    db.execute(
        "UPDATE api_keys SET expires_at = now() + interval '1 hour' WHERE name = 'test brand'"
    )
    assert client.get("/v1/products", headers=bearer(keys["brand"])).status_code == 200

    expired_at = expire(db, "test brand")
    refused = client.get("/v1/products", headers=bearer(keys["brand"]))
    at = expired_at.astimezone(UTC)
    assert_problem(refused, 401, f"API key expired at {at:%Y-%m-%dT%H:%M:%S}Z")
    assert refused.headers["WWW-Authenticate"] == "Bearer"

    db.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'test operator'")
    assert_problem(client.get("/v1/products", headers=bearer(keys["operator"])), 401, "revoked at")
    unknown = client.get("/v1/products", headers=bearer("lt_nosuchkey"))
    assert_problem(unknown, 401, "unknown or revoked API key")
    # Keys that are neither expired nor revoked work on.
    assert client.get("/v1/products", headers=bearer(keys["admin"])).status_code == 200


def test_an_expired_key_ends_its_page_sessions_and_cannot_log_in(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    assert client.post("/login", data={"key": keys["operator"]}).status_code == 303
    assert client.get("/dashboard").status_code == 200

    expired_at = expire(db, "test operator")
    to_login = client.get("/dashboard")
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login")
    client.cookies.clear()
    refused = client.post("/login", data={"key": keys["operator"]})
    # The form says why, as the API's 401 does.
    at = expired_at.astimezone(UTC)
    assert refused.status_code == 401
    assert f"API key expired at {at:%Y-%m-%dT%H:%M:%S}Z." in refused.text


# -- last used ----------------------------------------------------------------------------


def test_last_use_is_written_once_per_interval(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    """Written on the first use, then not again within LAST_USED_PRECISION_S: neither by
    this process (it remembers) nor by another (the database's condition)."""
    brand = key_id(db, "test brand")
    assert last_used(db, "test brand") is None
    before = datetime.now(UTC)
    assert client.get("/v1/products", headers=bearer(keys["brand"])).status_code == 200
    KEY_USES.settle()
    first = last_used(db, "test brand")
    assert first is not None and before - timedelta(seconds=5) <= first <= datetime.now(UTC)
    assert last_used(db, "test operator") is None  # only the key that was used

    # Within the interval: a use seen by another process (forget) is not written either.
    earlier = "UPDATE api_keys SET last_used_at = now() - make_interval(secs => %s)"
    within = LAST_USED_PRECISION_S - 60
    db.execute(earlier + " WHERE id = %s", (within, brand))
    written = last_used(db, "test brand")
    KEY_USES.forget(brand)
    assert client.get("/v1/products", headers=bearer(keys["brand"])).status_code == 200
    KEY_USES.settle()
    assert last_used(db, "test brand") == written

    # Older than the interval, but this process wrote (or checked) it just now: no write.
    db.execute(earlier + " WHERE id = %s", (LAST_USED_PRECISION_S + 60, brand))
    stale = last_used(db, "test brand")
    assert client.get("/v1/products", headers=bearer(keys["brand"])).status_code == 200
    KEY_USES.settle()
    assert last_used(db, "test brand") == stale

    # Once this process's interval has passed too (forget), the next use is written.
    KEY_USES.forget(brand)
    assert client.get("/v1/products", headers=bearer(keys["brand"])).status_code == 200
    KEY_USES.settle()
    latest = last_used(db, "test brand")
    assert stale is not None and latest is not None and latest > stale + timedelta(minutes=5)


def test_a_login_to_the_pages_is_a_use_of_its_key(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert client.post("/login", data={"key": keys["brand"]}).status_code == 303
    used = last_used(db, "test brand")
    assert used is not None and used >= before
    assert last_used(db, "test operator") is None


def test_a_page_viewed_after_the_login_is_a_use_of_its_key(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    """A key used only through the portal, its session lasting 36 h, is in use while its
    pages are viewed: not only when it logged in."""
    assert client.post("/login", data={"key": keys["brand"]}).status_code == 303
    db.execute(
        "UPDATE api_keys SET last_used_at = now() - interval '1 day' WHERE name = 'test brand'"
    )
    KEY_USES.forget(key_id(db, "test brand"))
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert client.get("/portal").status_code == 200
    KEY_USES.settle()
    used = last_used(db, "test brand")
    assert used is not None and used >= before


def test_last_use_never_holds_up_a_request(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any], db_url: str
) -> None:
    """The key's row locked (a revocation under way in another transaction): the request is
    answered, the write skips the row instead of waiting for it."""
    operator = key_id(db, "test operator")
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT 1 FROM api_keys WHERE id = %s FOR UPDATE", (operator,))
        started = time.monotonic()
        assert client.get("/v1/devices", headers=bearer(keys["operator"])).status_code == 200
        KEY_USES.settle(timeout_s=3)
        assert time.monotonic() - started < 3
        holder.rollback()
    assert last_used(db, "test operator") is None


def test_a_read_only_database_serves_requests_and_records_no_use(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An API on a read replica (here: a database whose transactions are read-only)
    answers as usual; the use is not written, and that is logged, not raised."""
    seed_registry(db, [])
    key = create_key(db, Role.OPERATOR, "replica reader")
    name = db.execute("SELECT current_database()").fetchone()
    assert name is not None
    db.execute(
        sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
            sql.Identifier(name[0])
        )
    )
    settings = Settings(database_url=db_url, mqtt_url=broker.url, topic_root=topic_root)
    caplog.set_level(logging.INFO, logger="api.keys.last_used")
    with TestClient(create_app(settings)) as replica:
        assert replica.get("/v1/products", headers=bearer(key)).status_code == 200
        KEY_USES.settle()
    assert last_used(db, "replica reader") is None
    assert "key_last_used=not_recorded reason=read_only_database" in caplog.text


# -- /v1/keys -----------------------------------------------------------------------------


def test_an_operator_creates_lists_and_revokes_keys(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    operator = bearer(keys["operator"])
    made = client.post(
        "/v1/keys",
        json={"role": "brand", "name": "fjord portal", "brand": "fjord", "expires": "90d"},
        headers=operator,
    )
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    created = made.json()
    secret = created["key"]
    assert secret.startswith("lt_")
    assert made.headers["location"] == f"/v1/keys/{created['id']}"
    assert (created["role"], created["brand"], created["state"]) == ("brand", "fjord", "active")
    expires = datetime.fromisoformat(created["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    # The new key works, within its brand.
    assert client.get("/v1/products", headers=bearer(secret)).status_code == 200

    listed = client.get("/v1/keys", headers=operator)
    assert listed.status_code == 200
    names = [key["name"] for key in listed.json()["items"]]
    assert sorted(names) == sorted(["fjord portal", *(f"test {r}" for r in ROLES)])
    assert secret not in listed.text and all(k not in listed.text for k in keys.values())
    assert all("key" not in key for key in listed.json()["items"])
    one = client.get(f"/v1/keys/{created['id']}", headers=operator)
    assert one.status_code == 200 and secret not in one.text
    assert one.json()["expires_at"] == created["expires_at"]

    revoked = client.post(f"/v1/keys/{created['id']}/revoke", headers=operator)
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert (body["state"], body["revoked_now"], body["own_key"]) == ("revoked", True, False)
    assert_problem(client.get("/v1/products", headers=bearer(secret)), 401, "revoked at")
    again = client.post(f"/v1/keys/{created['id']}/revoke", headers=operator)
    assert again.json()["revoked_now"] is False
    assert again.json()["revoked_at"] == body["revoked_at"]
    missing = client.post(f"/v1/keys/{uuid.uuid4()}/revoke", headers=operator)
    assert_problem(missing, 404, "no key")


def test_keys_are_refused_as_looptrack_keys_create_refuses_them(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    operator = bearer(keys["operator"])
    before = db.execute("SELECT count(*) FROM api_keys").fetchone()
    for body, detail in [
        ({"role": "brand", "name": "n", "brand": "fjrod"}, "unknown brand 'fjrod'"),
        ({"role": "device", "name": "n", "device_id": "rvm-9"}, "unknown device 'rvm-9'"),
        ({"role": "operator", "name": "n", "brand": "fjord"}, "a brand goes with role brand"),
        ({"role": "brand", "name": "n"}, "a brand goes with role brand"),
        ({"role": "operator", "name": "n", "expires": "90"}, "expiry '90' is not understood"),
        ({"role": "operator", "name": "n", "expires": "2020-01-01"}, "not in the future"),
    ]:
        assert_problem(client.post("/v1/keys", json=body, headers=operator), 422, detail)
    assert db.execute("SELECT count(*) FROM api_keys").fetchone() == before


def test_only_operators_and_admins_manage_keys_and_only_admins_admin_keys(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    admin_id = key_id(db, "test admin")
    for role in ("brand", "device"):
        headers = bearer(keys[role])
        assert_problem(client.get("/v1/keys", headers=headers), 403, f"role {role}")
        assert_problem(client.get(f"/v1/keys/{admin_id}", headers=headers), 403, f"role {role}")
        made = client.post("/v1/keys", json={"role": "operator", "name": "n"}, headers=headers)
        assert_problem(made, 403, f"role {role}")
        revoked = client.post(f"/v1/keys/{admin_id}/revoke", headers=headers)
        assert_problem(revoked, 403, f"role {role}")

    operator = bearer(keys["operator"])
    admin_key = {"role": "admin", "name": "second admin"}
    assert_problem(client.post("/v1/keys", json=admin_key, headers=operator), 403, "admin key")
    refused = client.post(f"/v1/keys/{admin_id}/revoke", headers=operator)
    assert_problem(refused, 403, "only an admin key may revoke an admin key")
    assert client.get("/v1/keys", headers=bearer(keys["admin"])).status_code == 200
    made = client.post("/v1/keys", json=admin_key, headers=bearer(keys["admin"]))
    assert made.status_code == 201 and made.json()["role"] == "admin"
    revoked_at = db.execute("SELECT revoked_at FROM api_keys WHERE id = %s", (admin_id,))
    assert revoked_at.fetchone() == (None,)


def test_a_key_may_revoke_itself_and_is_refused_from_the_next_request(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    operator = bearer(keys["operator"])
    own = key_id(db, "test operator")
    answer = client.post(f"/v1/keys/{own}/revoke", headers=operator)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["own_key"], answer.json()["revoked_now"]) == (True, True)
    assert_problem(client.get("/v1/keys", headers=operator), 401, "API key revoked at")


def test_keys_are_listed_newest_first_a_page_at_a_time(
    client: TestClient, keys: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    # Made a minute apart, the admin's first.
    for minutes, role in enumerate(ROLES):
        db.execute(
            "UPDATE api_keys SET created_at = now() - make_interval(mins => %s) WHERE name = %s",
            (10 - minutes, f"test {role}"),
        )
    operator = bearer(keys["operator"])
    first = client.get("/v1/keys", params={"limit": 3}, headers=operator).json()
    assert [key["name"] for key in first["items"]] == [
        "test device",
        "test brand",
        "test operator",
    ]
    rest = client.get("/v1/keys", params={"limit": 3, "after": first["next"]}, headers=operator)
    assert [key["name"] for key in rest.json()["items"]] == ["test admin"]
    assert rest.json()["next"] is None
