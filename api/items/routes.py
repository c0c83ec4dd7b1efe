"""`GET /v1/items/{gtin}/{serial}` and `GET /v1/items/8003/{grai}`: one serialised item or
returnable asset, its status, trips and history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from api.dependencies import (
    Conn,
    RegistryReader,
    parse_grai,
    parse_gtin,
    parse_serial,
    scoped_brand,
    without_places,
)
from api.items.service import item_history, item_name
from api.problems import ERROR_RESPONSES, Problem
from schemas.grai import (
    AI_GRAI,
    GRAI_PATTERN,
    grai_item_class,
)

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

    gtin: str | None  # None for a returnable asset keyed by GRAI
    grai: str | None = None  # the whole GRAI (asset type and serial) of such an asset
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


# Declared before /items/{gtin}/{serial}, which "8003/…" would reach as an invalid GTIN.
@router.get(f"/items/{AI_GRAI}/{{grai}}", response_model=Item)
def get_asset(
    grai: Annotated[str, Path(max_length=30, pattern=GRAI_PATTERN)],
    conn: Conn,
    caller: RegistryReader,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100,
) -> dict[str, Any]:
    """A returnable asset by its serialised GRAI (AI 8003), as an item: packaging, status,
    trips and newest events (operator; a brand key only for its own asset types)."""
    asset_type, serial = parse_grai(grai)
    if serial is None:
        raise Problem(422, "invalid-grai", f"grai {grai}: no serial, so not one asset")
    return _item(conn, grai_item_class(asset_type), serial, caller, limit)


@router.get("/items/{gtin}/{serial}", response_model=Item)
def get_item(
    gtin: Annotated[str, Path(max_length=14)],
    serial: Annotated[str, Path(max_length=60)],
    conn: Conn,
    caller: RegistryReader,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100,
) -> dict[str, Any]:
    """An item with its packaging, status (its latest event), trips and newest events
    (operator; a brand key only for its own products, others are 404, and its events
    without device and site ids)."""
    return _item(conn, parse_gtin(gtin), parse_serial(serial), caller, limit)


def _item(
    conn: Conn, item_class: str, serial: str, caller: RegistryReader, limit: int
) -> dict[str, Any]:
    brand, _ = scoped_brand(caller, None)
    item = item_history(conn, item_class, serial, brand=brand, limit=limit)
    if item is None:
        raise Problem(404, "not-found", f"no {item_name(item_class, serial)}")
    return {**item, "events": without_places(caller, item["events"])}
