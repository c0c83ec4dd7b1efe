"""API keys: generation, hashing and lookup (SPEC §9). Keys are stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg

from schemas.named_queries import load_queries

QUERIES = load_queries("schemas", "sql/queries/api_keys.sql")

KEY_PREFIX = "lt_"
# Random bytes per key: 256 bits, so a fast hash (not a password hash) is safe to store.
KEY_BYTES = 32


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


def create_key(
    conn: psycopg.Connection[Any],
    role: Role,
    name: str,
    *,
    brand: str | None = None,
    device_id: str | None = None,
) -> str:
    """Store a new key's hash and return the key itself (shown once, never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    conn.execute(
        QUERIES["insert_key"],
        {
            "id": uuid.uuid4(),
            "name": name,
            "role": role.value,
            "brand": brand,
            "device_id": device_id,
            "key_hash": hash_key(key),
        },
    )
    return key


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is kept of a key (never the key, nor its hash)."""

    id: uuid.UUID
    name: str
    role: Role
    brand: str | None
    device_id: str | None
    created_at: datetime
    revoked_at: datetime | None


def brand_known(conn: psycopg.Connection[Any], brand: str) -> bool:
    """Whether a product is registered under `brand`: a key for a misspelt brand would
    see nothing, and say nothing about why."""
    row = conn.execute(QUERIES["brand_known"], {"brand": brand}).fetchone()
    return bool(row and row[0])


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyRecord]:
    """Every key, the newest first, revoked ones included."""
    return [
        KeyRecord(id_, name, Role(role), brand, device_id, created_at, revoked_at)
        for id_, name, role, brand, device_id, created_at, revoked_at in conn.execute(
            QUERIES["list_keys"]
        )
    ]


def revoke_key(conn: psycopg.Connection[Any], key_id: uuid.UUID) -> tuple[datetime, bool] | None:
    """Revoke the key `key_id`: from now on it authenticates nothing. Returns when it was
    revoked and whether by this call (False: it already was); None for an unknown id."""
    row = conn.execute(QUERIES["revoke_key"], {"id": key_id}).fetchone()
    return (row[0], row[1]) if row else None
