"""Request dependencies: the transaction (one per request, committed here) and the caller."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.key_throttle import KeyThrottle
from api.keys.last_used import note_key_use
from api.problems import Problem
from schemas import grai
from schemas.api_keys import KeyRefused, Principal, Role, caller_of_key, record_use
from schemas.digital_link import InvalidSerial, validate_serial
from schemas.grai import AI_GRAI, InvalidGrai, validate_asset_type
from schemas.gtin import InvalidGtin, normalize_gtin
from schemas.settings import Settings

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="API key from `looptrack keys create`")
# Longest key accepted before hashing; real keys are 46 characters.
MAX_KEY_LENGTH = 200


def transaction(request: Request) -> Iterator[psycopg.Connection[Any]]:
    """A connection in a transaction, committed before the response is sent."""
    with request.app.state.pool.connection() as conn:
        yield conn
        conn.commit()


# scope="function": committed when the endpoint returns, before the response is sent
# (FastAPI's default for a dependency with yield ends it after the response went out: a
# client could be told 201 for a write whose commit then failed, or bring the new login
# cookie back before its session was committed).
Conn = Annotated[psycopg.Connection[Any], Depends(transaction, scope="function")]


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def principal(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind `Authorization: Bearer <key>`; 401 when missing, unknown, revoked
    or expired, 429 once the client has sent too many unknown keys (api.key_throttle)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "unauthenticated", "missing API key: send Authorization: Bearer <key>")
    return checked_key(request, conn, credentials.credentials)


def checked_key(request: Request, conn: psycopg.Connection[Any], key: str) -> Principal:
    """The caller holding `key`, sent by `request`'s client: 429 while that client is
    throttled, 401 (counted against it) when the key is unknown, revoked or expired. A
    key let in has its use noted (api.keys.last_used: off the request's path)."""
    throttle: KeyThrottle = request.app.state.key_throttle
    client = request.client.host if request.client else "unknown"
    throttle.check(client)
    try:
        found = _caller(conn, key)
    except KeyRefused as refused:
        throttle.failed(client)
        raise Problem(401, "unauthenticated", str(refused)) from None
    note_key_use(request.app.state.pool, found.key_id)
    return found


def principal_for_key(conn: psycopg.Connection[Any], key: str) -> Principal | None:
    """login_caller, or None when the key is unknown, revoked or expired."""
    try:
        return login_caller(conn, key)
    except KeyRefused:
        return None


def login_caller(conn: psycopg.Connection[Any], key: str) -> Principal:
    """The caller holding `key`, typed into the pages' login form; KeyRefused saying why
    when the key is unknown, revoked or expired. A login is a use of the key: it is
    written in the login's own transaction (a POST, served by the primary, that writes the
    session anyway), in a savepoint, so that a failed write never fails the login."""
    caller = _caller(conn, key)
    try:
        with conn.transaction():
            record_use(conn, caller.key_id)
    except psycopg.Error as exc:
        log.warning("key_last_used=not_recorded key_id=%s error=%r", caller.key_id, exc)
    return caller


def _caller(conn: psycopg.Connection[Any], key: str) -> Principal:
    if len(key) > MAX_KEY_LENGTH:
        raise KeyRefused("unknown or revoked API key")
    return caller_of_key(conn, key)


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only the given roles (admin is always admitted)."""
    allowed = {Role.ADMIN, *roles}

    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Problem(403, "forbidden", f"role {caller.role.value} may not do this ({names})")
        return caller

    return check


# Largest page of a list endpoint.
MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
RegistryReader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.BRAND))]


def scoped_brand(caller: Principal, brand: str | None) -> tuple[str | None, bool]:
    """The brand filter to apply, and False when the caller may see nothing of it: a
    brand key is always held to its own brand."""
    if caller.role is Role.BRAND:
        return caller.brand, brand is None or brand == caller.brand
    return brand, True


def without_places(caller: Principal, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` as `caller` may see them: device and site ids are the operator's, so a
    brand key gets them as null, wherever events are listed (one rule for every answer)."""
    if caller.role is not Role.BRAND:
        return events
    return [{**event, "device_id": None, "site_id": None} for event in events]


def parse_gtin(value: str) -> str:
    """A GTIN from a URL, normalised to 14 digits; 422 with the reason when invalid."""
    try:
        return normalize_gtin(value)
    except InvalidGtin as exc:
        raise Problem(422, "invalid-gtin", str(exc)) from None


def parse_item_class(value: str) -> str:
    """A GTIN (normalised to 14 digits), or a GRAI asset type's item class ("8003" and 14
    digits), from a form; 422 with the reason when invalid."""
    if len(value) == 18 and value.startswith(AI_GRAI):
        return grai.grai_item_class(parse_asset_type(value[len(AI_GRAI) :]))
    return parse_gtin(value)


def parse_asset_type(value: str) -> str:
    """A GRAI asset type from a URL (14 digits); 422 with the reason when invalid."""
    try:
        return validate_asset_type(value)
    except InvalidGrai as exc:
        raise Problem(422, "invalid-grai", str(exc)) from None


def parse_grai(value: str) -> tuple[str, str | None]:
    """A whole GRAI from a URL: (asset type, serial or None); 422 with the reason."""
    try:
        return grai.parse_grai(value)
    except InvalidGrai as exc:
        raise Problem(422, "invalid-grai", str(exc)) from None


def parse_serial(value: str) -> str:
    """A serial from a URL, checked against GS1 AI (21); 422 with the reason when invalid."""
    try:
        return validate_serial(value)
    except InvalidSerial as exc:
        raise Problem(422, "invalid-serial", str(exc)) from None
