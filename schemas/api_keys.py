"""API keys: generation, hashing, lookup and life cycle (SPEC §9, issue 22.1). Keys are
stored only as hashes; `looptrack keys` and /v1/keys share the functions here."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import psycopg

from schemas.named_queries import load_queries

QUERIES = load_queries("schemas", "sql/queries/api_keys.sql")

KEY_PREFIX = "lt_"
# Random bytes per key: 256 bits, so a fast hash (not a password hash) is safe to store.
KEY_BYTES = 32
# A key's last use is written at most once per key in this many seconds (300 s: 5 min), so
# `last_used_at` is the last use to within 5 minutes: fine enough to see that a rotated
# key is no longer used, or which keys sat idle for months, while a key's traffic costs one
# small write per 5 minutes instead of one per request (docs/operations.md, API keys).
LAST_USED_PRECISION_S = 300
# Longest expiry a key may be given: ten years (longer: give it none).
MAX_EXPIRY = timedelta(days=3650)
# `--expires` / "expires": a count of hours or days ("12h", "90d").
_RELATIVE_EXPIRY = re.compile(r"^([0-9]{1,6})([hd])$")


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    BRAND = "brand"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's role and what it is bound to."""

    key_id: uuid.UUID
    role: Role
    brand: str | None = None
    device_id: str | None = None

    @classmethod
    def of_row(cls, row: tuple[Any, ...] | None) -> Principal | None:
        """From a row (id, role, brand, device_id) of api_keys; None for no row."""
        if row is None:
            return None
        key_id, role, brand, device_id = row
        return cls(key_id, Role(role), brand, device_id)


def hash_key(key: str) -> bytes:
    """SHA-256 of the key as stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyRefused(Exception):
    """A key that authenticates nothing; the message says why, for its holder (unknown,
    revoked at …, expired at …)."""


def caller_of_key(conn: psycopg.Connection[Any], key: str) -> Principal:
    """The caller holding `key`; KeyRefused when the key is unknown, revoked or expired
    (expiry by the database's clock, as sessions' and revocations' times are)."""
    row = conn.execute(QUERIES["find_key"], {"key_hash": hash_key(key)}).fetchone()
    if row is None:
        raise KeyRefused("unknown or revoked API key")
    key_id, role, brand, device_id, revoked_at, expires_at, expired = row
    if revoked_at is not None:
        raise KeyRefused(f"API key revoked at {_instant(revoked_at)}")
    if expired:
        raise KeyRefused(f"API key expired at {_instant(expires_at)}")
    return Principal(key_id, Role(role), brand, device_id)


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


KeyState = Literal["active", "expired", "revoked"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is kept of a key (never the key, nor its hash). `last_used_at` is the last use
    to within LAST_USED_PRECISION_S; `state` is by the database's clock."""

    id: uuid.UUID
    name: str
    role: Role
    brand: str | None
    device_id: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    state: KeyState

    @classmethod
    def of_row(cls, row: tuple[Any, ...]) -> KeyRecord:
        id_, name, role, brand, device_id, created, expires, last_used, revoked, state = row
        return cls(id_, name, Role(role), brand, device_id, created, expires, last_used,
                   revoked, state)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: its record, and the key itself, to be shown once."""

    record: KeyRecord
    key: str


def create_key(
    conn: psycopg.Connection[Any],
    role: Role,
    name: str,
    *,
    brand: str | None = None,
    device_id: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Store a new key's hash and return the key itself (shown once, never stored); no
    checks of the brand (issue_key has them)."""
    return _insert(conn, role, name, brand, device_id, expires_at).key


def _insert(
    conn: psycopg.Connection[Any],
    role: Role,
    name: str,
    brand: str | None,
    device_id: str | None,
    expires_at: datetime | None,
) -> IssuedKey:
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = conn.execute(
        QUERIES["insert_key"],
        {
            "id": uuid.uuid4(),
            "name": name,
            "role": role.value,
            "brand": brand,
            "device_id": device_id,
            "key_hash": hash_key(key),
            "expires_at": expires_at,
        },
    ).fetchone()
    assert row is not None  # INSERT … RETURNING
    return IssuedKey(KeyRecord.of_row(row), key)


class KeyRequestError(ValueError):
    """A key that cannot be made as asked; the message says why and what to do."""


def issue_key(
    conn: psycopg.Connection[Any],
    role: Role,
    name: str,
    *,
    brand: str | None = None,
    device_id: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """A new key after the checks `looptrack keys create` and POST /v1/keys share: a brand
    goes with a brand key only and must have a registered product, a device with a device
    key only and must be registered, an expiry must lie ahead (KeyRequestError)."""
    if (role is Role.BRAND) != (brand is not None):
        raise KeyRequestError("a brand goes with role brand, and only with it")
    if (role is Role.DEVICE) != (device_id is not None):
        raise KeyRequestError("a device goes with role device, and only with it")
    if not 1 <= len(name) <= 200:
        raise KeyRequestError("a key's name has 1 to 200 characters")
    if brand is not None and not brand_known(conn, brand):
        raise KeyRequestError(
            f"unknown brand {brand!r}: no product is registered under it (register the"
            " brand's products first)"
        )
    if device_id is not None and not _device_known(conn, device_id):
        raise KeyRequestError(f"unknown device {device_id!r}: register it first")
    if expires_at is not None:
        _check_expiry(expires_at, datetime.now(UTC))
    return _insert(conn, role, name, brand, device_id, expires_at)


def parse_expiry(text: str, now: datetime) -> datetime:
    """When a key given `text` expires: "12h" and "90d" count hours or days from `now`; a
    date (2027-03-01) is its start in UTC; a date-time needs its UTC offset. Between now
    and MAX_EXPIRY ahead; KeyRequestError saying what is accepted otherwise."""
    text = text.strip()
    accepted = (
        "give hours or days (12h, 90d), a date (2027-03-01, from 00:00 UTC) or a date-time "
        "with its offset (2027-03-01T12:00:00+01:00)"
    )
    if relative := _RELATIVE_EXPIRY.match(text):
        count, unit = int(relative[1]), relative[2]
        if count == 0:
            raise KeyRequestError(f"expiry {text!r} is now: {accepted}")
        span = timedelta(hours=count) if unit == "h" else timedelta(days=count)
        if span > MAX_EXPIRY:
            raise KeyRequestError(f"expiry {text!r} is more than {MAX_EXPIRY.days} days ahead")
        return now + span
    try:
        if len(text) == len("2027-03-01"):
            at = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            at = datetime.fromisoformat(text)
    except ValueError:
        raise KeyRequestError(f"expiry {text!r} is not understood: {accepted}") from None
    if at.tzinfo is None:
        raise KeyRequestError(f"expiry {text!r} has no UTC offset: {accepted}")
    _check_expiry(at, now)
    return at


def _check_expiry(at: datetime, now: datetime) -> None:
    if at <= now:
        raise KeyRequestError(f"expiry {_instant(at)} is not in the future")
    if at > now + MAX_EXPIRY:
        raise KeyRequestError(f"expiry {_instant(at)} is more than {MAX_EXPIRY.days} days ahead")


def brand_known(conn: psycopg.Connection[Any], brand: str) -> bool:
    """Whether a product is registered under `brand`: a key for a misspelt brand would
    see nothing, and say nothing about why."""
    row = conn.execute(QUERIES["brand_known"], {"brand": brand}).fetchone()
    return bool(row and row[0])


def _device_known(conn: psycopg.Connection[Any], device_id: str) -> bool:
    row = conn.execute(QUERIES["device_known"], {"device_id": device_id}).fetchone()
    return bool(row and row[0])


def list_keys(
    conn: psycopg.Connection[Any], *, after: uuid.UUID | None = None, limit: int | None = None
) -> list[KeyRecord]:
    """Keys newest first, revoked and expired ones included: all of them, or `limit`
    after the key `after` (a page)."""
    rows = conn.execute(QUERIES["list_keys"], {"id": None, "after": after, "limit": limit})
    return [KeyRecord.of_row(row) for row in rows]


def get_key(conn: psycopg.Connection[Any], key_id: uuid.UUID) -> KeyRecord | None:
    """The key `key_id`; None for an unknown id."""
    row = conn.execute(QUERIES["list_keys"], {"id": key_id, "after": None, "limit": 1}).fetchone()
    return KeyRecord.of_row(row) if row else None


def revoke_key(conn: psycopg.Connection[Any], key_id: uuid.UUID) -> tuple[datetime, bool] | None:
    """Revoke the key `key_id`: from now on it authenticates nothing. Returns when it was
    revoked and whether by this call (False: it already was); None for an unknown id."""
    row = conn.execute(QUERIES["revoke_key"], {"id": key_id}).fetchone()
    return (row[0], row[1]) if row else None


def record_use(conn: psycopg.Connection[Any], key_id: uuid.UUID) -> float | None:
    """Note that the key `key_id` was used now, unless its last use on record is younger
    than LAST_USED_PRECISION_S; never waits for the key's row. Returns the age (s) of the
    use on record afterwards (0 when this wrote it), None for an unknown key."""
    row = conn.execute(
        QUERIES["record_use"], {"id": key_id, "interval_s": LAST_USED_PRECISION_S}
    ).fetchone()
    return row[0] if row else None
