"""Key management over the API: who may make and revoke which keys, and the records the
endpoints answer. The keys themselves, their checks and queries are schemas.api_keys's,
shared with `looptrack keys`."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import psycopg

from api.problems import Problem
from schemas.api_keys import (
    KeyRecord,
    KeyRequestError,
    Principal,
    Role,
    get_key,
    issue_key,
    list_keys,
    parse_expiry,
    revoke_key,
)


def key_fields(record: KeyRecord) -> dict[str, Any]:
    """A key's record as the API shows it (never the key, nor its hash)."""
    return asdict(record)


def keys_page(conn: psycopg.Connection[Any], after: uuid.UUID | None, limit: int) -> dict[str, Any]:
    """Up to `limit` keys newest first after the key `after`; `next` is the `after` of
    the following page, when there may be one."""
    records = list_keys(conn, after=after, limit=limit)
    return {
        "items": [key_fields(record) for record in records],
        "next": str(records[-1].id) if len(records) == limit else None,
    }


def one_key(conn: psycopg.Connection[Any], key_id: uuid.UUID) -> dict[str, Any]:
    """The key `key_id`; 404 when there is none."""
    record = get_key(conn, key_id)
    if record is None:
        raise Problem(404, "not-found", f"no key {key_id}")
    return key_fields(record)


def _may_manage(caller: Principal, role: Role, doing: str) -> None:
    # An admin key can do everything an operator key can and more (labels, devices'
    # posts): an operator that made or revoked admin keys would hold admin's powers.
    if role is Role.ADMIN and caller.role is not Role.ADMIN:
        raise Problem(403, "forbidden", f"only an admin key may {doing} an admin key")


def create(
    conn: psycopg.Connection[Any],
    caller: Principal,
    role: Role,
    name: str,
    *,
    brand: str | None,
    device_id: str | None,
    expires: str | None,
) -> dict[str, Any]:
    """A new key with the checks `looptrack keys create` makes (422 saying which failed),
    its record and the key itself (`key`), shown only in this answer."""
    _may_manage(caller, role, "create")
    try:
        expires_at = parse_expiry(expires, datetime.now(UTC)) if expires is not None else None
        issued = issue_key(
            conn, role, name, brand=brand, device_id=device_id, expires_at=expires_at
        )
    except KeyRequestError as exc:
        raise Problem(422, "invalid-key-request", str(exc)) from None
    return {**key_fields(issued.record), "key": issued.key}


def revoke(conn: psycopg.Connection[Any], caller: Principal, key_id: uuid.UUID) -> dict[str, Any]:
    """Revoke the key `key_id` for good (again: nothing changes); 404 for an unknown id.
    The answer says whether this call revoked it and whether it was the caller's own."""
    record = get_key(conn, key_id)
    if record is None:
        raise Problem(404, "not-found", f"no key {key_id}")
    _may_manage(caller, record.role, "revoke")
    revoked = revoke_key(conn, key_id)
    assert revoked is not None  # the key exists: it is never deleted
    revoked_at, now = revoked
    fields = key_fields(record)
    return {
        **fields,
        "revoked_at": revoked_at,
        "state": "revoked",
        "revoked_now": now,
        "own_key": key_id == caller.key_id,
    }
