"""Sessions of the pages (dashboard, portal): the login cookie carries a random session
id, never the API key, and the database keeps only its SHA-256. A session ends at logout,
when it expires, or when its key is revoked; the id alone authenticates nothing else
(it is no bearer key)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

import psycopg

from schemas.api_keys import Principal
from schemas.named_queries import load_queries

QUERIES = load_queries("schemas", "sql/queries/page_sessions.sql")

# Random bytes of a session id: 256 bits, so a fast hash is safe to store.
SESSION_BYTES = 32
# Longest a session id may be, as the cookie brings it (longer: no session).
MAX_SESSION_LENGTH = 100


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()


def start_session(conn: psycopg.Connection[Any], key_id: uuid.UUID, lifetime_s: int) -> str:
    """A new session of the key `key_id`, valid for `lifetime_s`; returns its id (for the
    cookie; only its hash is stored)."""
    session_id = secrets.token_urlsafe(SESSION_BYTES)
    conn.execute(
        QUERIES["start_session"],
        {"id_hash": _hash(session_id), "key_id": key_id, "lifetime_s": lifetime_s},
    )
    return session_id


def session_caller(conn: psycopg.Connection[Any], session_id: str) -> Principal | None:
    """Who holds the live session `session_id`; None when it is unknown, ended, expired,
    or its key revoked."""
    if len(session_id) > MAX_SESSION_LENGTH:
        return None
    row = conn.execute(QUERIES["session_caller"], {"id_hash": _hash(session_id)}).fetchone()
    return Principal.of_row(row)


def end_session(conn: psycopg.Connection[Any], session_id: str) -> None:
    """End the session `session_id` (logout); nothing when there is none."""
    if len(session_id) <= MAX_SESSION_LENGTH:
        conn.execute(QUERIES["end_session"], {"id_hash": _hash(session_id)})
