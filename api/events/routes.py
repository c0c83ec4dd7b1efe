"""`GET /v1/events`: stored events, newest first, filtered and cursor-paginated."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.dependencies import (
    Conn,
    Limit,
    RegistryReader,
    parse_grai,
    parse_gtin,
    scoped_brand,
    without_places,
)
from api.events.service import decode_cursor, encode_cursor, stored_events
from api.problems import ERROR_RESPONSES, Problem
from api.time_window import Instant
from schemas.digital_link import SERIAL_PATTERN
from schemas.events import EventType
from schemas.grai import GRAI_PATTERN, grai_item_class
from schemas.registry import DeviceId, Slug

router = APIRouter(prefix="/v1", tags=["events"], responses=ERROR_RESPONSES)


class StoredEvent(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "4f1d6c3e-8b7a-4e2f-a1c9-3d5e7f9b1a20",
                    "ts": "2026-03-29T14:02:11+02:00",
                    "received_at": "2026-03-29T12:02:11.412000Z",
                    "type": "rejected",
                    "gtin": "07038010001239",
                    "serial": "7KQ2M9XH4PZ",
                    "qty": 1,
                    "seq": 1042,
                    "device_id": "rvm-oslo-7",
                    "site_id": "oslo-grunerlokka",
                    "reason": "damaged",
                    "stream": "lane-2",
                    "attrs": {"fill_level": "empty"},
                }
            ]
        }
    )

    event_id: uuid.UUID
    ts: datetime
    received_at: datetime
    type: EventType
    gtin: str | None  # None for a returnable asset keyed by GRAI
    grai: str | None = None  # such an asset's whole GRAI: asset type and serial
    serial: str | None
    qty: int
    seq: int | None
    device_id: str | None  # None for events no device sent (commissioning)
    site_id: str | None
    reason: str | None
    stream: str | None
    weight_g: float | None = None  # a sorted event's measured weight of all qty (g)
    attrs: dict[str, Any] | None


class EventPage(BaseModel):
    events: list[StoredEvent]
    next_cursor: str | None = None


@router.get("/events", response_model=EventPage)
def list_events(
    conn: Conn,
    caller: RegistryReader,
    gtin: Annotated[str | None, Query(max_length=14)] = None,
    serial: Annotated[str | None, Query(pattern=SERIAL_PATTERN)] = None,
    grai: Annotated[
        str | None,
        Query(
            max_length=30,
            pattern=GRAI_PATTERN,
            description="a returnable asset's GRAI (with serial), or an asset type's",
        ),
    ] = None,
    device_id: Annotated[DeviceId | None, Query()] = None,
    site_id: Annotated[Slug | None, Query()] = None,
    type: Annotated[EventType | None, Query()] = None,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Annotated[Instant | None, Query()] = None,
    limit: Limit = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Events newest first (operator; a brand key sees its own products' events only,
    without device and site ids, and cannot filter by them). Pass `next_cursor` back as
    `cursor` for the next page."""
    brand, visible = scoped_brand(caller, None)
    if not visible:
        return {"events": []}
    if brand is not None and (device_id is not None or site_id is not None):
        raise Problem(
            403,
            "forbidden",
            "device and site ids are the operator's: a brand key cannot filter by them",
        )
    item_class = None if gtin is None else parse_gtin(gtin)
    if grai is not None:
        if gtin is not None or serial is not None:
            raise Problem(422, "invalid-filter", "give grai, or gtin and serial, not both")
        asset_type, serial = parse_grai(grai)
        item_class = grai_item_class(asset_type)
    if from_ is not None and to is not None and from_ >= to:
        raise Problem(422, "invalid-window", "from must be before to")
    after_ts, after_id = decode_cursor(cursor) if cursor else (None, None)
    events = stored_events(
        conn,
        {
            "item_class": item_class, "serial": serial, "device_id": device_id,
            "site_id": site_id,
            "type": type.value if type else None, "from": from_, "to": to, "brand": brand,
            "after_ts": after_ts, "after_id": after_id,
        },
        limit,
    )  # fmt: skip
    last = events[-1] if len(events) == limit else None
    return {
        "events": without_places(caller, events),
        "next_cursor": encode_cursor(last["ts"], last["event_id"]) if last else None,
    }
