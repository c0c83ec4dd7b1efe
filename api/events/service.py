"""Stored events, newest first, and the cursors that page through them (GET /v1/events
and the EPCIS export)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.problems import Problem
from schemas.grai import key_fields
from schemas.named_queries import load_queries

_QUERIES = load_queries("api.events", "queries.sql")


def stored_events(
    conn: psycopg.Connection[Any], filters: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` events newest first, matching `filters` (item_class, serial,
    device_id, site_id, type, from, to, brand; None = any) after the cursor's `after_ts`
    and `after_id`; each shows `gtin`, or a returnable asset's `grai` (key_fields)."""
    cursor = conn.cursor(row_factory=dict_row)
    events = cursor.execute(_QUERIES["list_events"], {**filters, "limit": limit}).fetchall()
    for event in events:
        event.update(key_fields(event["item_class"], event["serial"]))
    return events


def encode_cursor(ts: datetime, event_id: uuid.UUID) -> str:
    raw = json.dumps([ts.isoformat(), str(event_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, event_id = json.loads(raw)
        return datetime.fromisoformat(ts), uuid.UUID(event_id)
    except (ValueError, TypeError):
        raise Problem(422, "invalid-cursor", "cursor is not one this API handed out") from None
