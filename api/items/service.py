"""Items and returnable assets as the operator and brand owners see them: record, status,
trips and history."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from schemas.grai import key_fields
from schemas.named_queries import load_queries

_QUERIES = load_queries("api.items", "queries.sql")


def item_history(
    conn: psycopg.Connection[Any], item_class: str, serial: str, *, brand: str | None,
    limit: int,
) -> dict[str, Any] | None:  # fmt: skip
    """An item with its packaging, trips, `status` (its latest event's type) and its
    `limit` newest `events`; None when it is unknown (neither commissioned nor seen in an
    event) or, with `brand`, another brand's. It shows `gtin` or `grai` (key_fields), as
    every record of an item does, never the stored item class alone."""
    cursor = conn.cursor(row_factory=dict_row)
    item = cursor.execute(
        _QUERIES["item"], {"item_class": item_class, "serial": serial, "brand": brand}
    ).fetchone()
    events = cursor.execute(
        _QUERIES["item_events"], {"item_class": item_class, "serial": serial, "limit": limit}
    ).fetchall()
    if item is None or (not events and item["commissioned_at"] is None):
        return None
    status = events[0]["type"] if events else None
    return {**item, **key_fields(item_class, serial), "status": status, "events": events}


def items_with_serial(
    conn: psycopg.Connection[Any], serial: str, *, brand: str
) -> list[dict[str, Any]]:
    """The brand's items with this serial (one per item class: commissioned here or
    seen only in devices' events), each with its product, packaging and trips, and `gtin`
    or `grai` to show."""
    cursor = conn.cursor(row_factory=dict_row)
    params = {"serial": serial, "brand": brand}
    classes = [r["item_class"] for r in cursor.execute(_QUERIES["items_with_serial"], params)]
    found = []
    for item_class in classes:
        row = cursor.execute(_QUERIES["item"], {**params, "item_class": item_class}).fetchone()
        if row is not None:
            found.append({**row, **key_fields(item_class, serial)})
    return found


def item_name(item_class: str, serial: str) -> str:
    """An item as a message names it: GTIN and serial, or an asset by its whole GRAI
    (never by the stored item class, "8003" and the asset type)."""
    key = key_fields(item_class, serial)
    if key["grai"] is not None:
        return f"asset {key['grai']}"
    return f"item {key['gtin']}/{serial}"
