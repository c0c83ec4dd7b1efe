"""`GET /v1/items/{gtin}/{serial}`: one serialised item, its status, trips and history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from api.dependencies import Conn, RegistryReader, parse_gtin, parse_serial, scoped_brand
from api.problems import ERROR_RESPONSES, Problem
from schemas.named_queries import load_queries

QUERIES = load_queries("api", "sql/items.sql")
router = APIRouter(prefix="/v1", tags=["items"], responses=ERROR_RESPONSES)
# Most history events in one answer.
MAX_HISTORY = 1000


class ItemEvent(BaseModel):
    event_id: uuid.UUID
    ts: datetime
    type: str
    device_id: str | None  # None for events no device sent (commissioning)
    site_id: str | None
    reason: str | None
    stream: str | None


class Item(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "gtin": "07038010009990",
                    "serial": "7KQ2M9XH4PZ",
                    "product": "Crate 24 x 0.33 l",
                    "brand": "fjordbrus",
                    "packaging_type": "crate-24",
                    "material": "HDPE",
                    "reusable": True,
                    "target_trips": 60,
                    "deposit": 1000,
                    "trips": 12,
                    "status": "rejected",
                    "commissioned_at": "2025-05-02T08:00:00Z",
                    "events": [
                        {
                            "event_id": "4f1d6c3e-8b7a-4e2f-a1c9-3d5e7f9b1a20",
                            "ts": "2026-03-29T14:02:11+02:00",
                            "type": "rejected",
                            "device_id": "rvm-oslo-7",
                            "site_id": "oslo-grunerlokka",
                            "reason": "damaged",
                            "stream": "lane-2",
                        }
                    ],
                }
            ]
        }
    )

    gtin: str
    serial: str
    product: str
    brand: str
    packaging_type: str
    material: str
    reusable: bool
    target_trips: int | None
    deposit: int
    trips: int
    status: str | None
    commissioned_at: datetime | None
    events: list[ItemEvent]


@router.get("/items/{gtin}/{serial}", response_model=Item)
def get_item(
    gtin: Annotated[str, Path(max_length=14)],
    serial: Annotated[str, Path(max_length=60)],
    conn: Conn,
    caller: RegistryReader,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100,
) -> dict[str, Any]:
    """An item with its packaging, status (its latest event), trips and newest events
    (operator; a brand key only for its own products, others are 404)."""
    gtin14 = parse_gtin(gtin)
    serial = parse_serial(serial)
    brand, _ = scoped_brand(caller, None)
    cursor = conn.cursor(row_factory=dict_row)
    item = cursor.execute(
        QUERIES["item"], {"gtin": gtin14, "serial": serial, "brand": brand}
    ).fetchone()
    events = cursor.execute(
        QUERIES["item_events"], {"gtin": gtin14, "serial": serial, "limit": limit}
    ).fetchall()
    if item is None or (not events and item["commissioned_at"] is None):
        raise Problem(404, "not-found", f"no item {gtin14}/{serial}")
    return {**item, "status": events[0]["type"] if events else None, "events": events}
