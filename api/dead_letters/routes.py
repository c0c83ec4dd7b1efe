"""Dead-letter endpoints (operator): list (previews), one by id (its payload), and replay
through the broker."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.dead_letters.service import (
    MAX_REPLAY,
    PREVIEW_BYTES,
    DeadLetterFilter,
    get_dead_letter,
    list_dead_letters,
    replay,
)
from api.dependencies import Conn, Limit, require
from api.problems import ERROR_RESPONSES, Problem
from schemas.api_keys import Principal, Role
from schemas.dead_letters import DeadLetterReason
from schemas.events import MAX_PAYLOAD_BYTES
from schemas.messages import DEAD_LETTER_HEAD_BYTES
from schemas.publisher import PublishError
from schemas.registry import DeviceId

BIGINT_MAX = 2**63 - 1  # dead letter ids are bigint
DeadLetterId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], responses=ERROR_RESPONSES)
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


# The example's payload, and its size and digest as a reader can check them.
_PAYLOAD = (
    '{"event_id":"5f0c4a52-0000-4000-8000-00000000beef","ts":"2026-03-29T12:02:10Z",'
    '"type":"returned","gtin":"7310865004709"}'
)
_EXAMPLE: dict[str, JsonValue] = {
    "id": 17,
    "received_at": "2026-03-29T12:02:11Z",
    "topic": "looptrack/v1/devices/rvm-oslo-7/events",
    "device_id": "rvm-oslo-7",
    "reason": "invalid_gtin",
    "detail": "gtin 7310865004709: check digit should be 3",
    "batch_index": 0,
    "payload_size": len(_PAYLOAD.encode()),
    "payload_sha256": hashlib.sha256(_PAYLOAD.encode()).hexdigest(),
    "payload_truncated": False,
    "replayed_at": "2026-03-29T12:30:00Z",
}


class _DeadLetterFields(BaseModel):
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    batch_index: int | None
    payload_size: int = Field(description="Bytes of the payload as received")
    payload_sha256: str = Field(description="SHA-256 of the payload as received, in hex")
    payload_truncated: bool = Field(
        description=f"Only the first {DEAD_LETTER_HEAD_BYTES} bytes are kept (a payload over "
        f"{MAX_PAYLOAD_BYTES} bytes): never replayed"
    )
    replayed_at: datetime | None


class DeadLetter(_DeadLetterFields):
    """A dead letter as lists show it: a short preview, not the payload."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "payload_preview": _PAYLOAD[:PREVIEW_BYTES],
                    "payload_encoding": "utf-8",
                }
            ]
        }
    )

    payload_preview: str = Field(
        description=f"The payload's first {PREVIEW_BYTES} bytes (fewer where that cuts a "
        "character), as text or hex (payload_encoding); all of it at GET /v1/dead-letters/{id}"
    )
    payload_encoding: Literal["utf-8", "hex"]


class DeadLetterWithPayload(_DeadLetterFields):
    """One dead letter with all that is stored of its payload."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_EXAMPLE, "payload": _PAYLOAD, "payload_encoding": "utf-8"}]
        }
    )

    payload: str = Field(
        description="The payload as stored, as text or hex (payload_encoding): the message "
        "for a whole-message failure, else the bad event; only its head if payload_truncated"
    )
    payload_encoding: Literal["utf-8", "hex"]


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetter]
    next_before: int | None = None


class ReplayRequest(BaseModel):
    """Which pending dead letters to send again; all criteria must hold."""

    ids: list[DeadLetterId] | None = Field(default=None, max_length=MAX_REPLAY)
    reason: DeadLetterReason | None = None
    device_id: DeviceId | None = None
    limit: int = Field(default=1000, ge=1, le=MAX_REPLAY)


class Replayed(BaseModel):
    replayed: list[int]


@router.get("", response_model=DeadLetterPage)
def get_dead_letters(
    conn: Conn,
    _: Operator,
    reason: DeadLetterReason | None = None,
    device_id: Annotated[DeviceId | None, Query()] = None,
    pending: bool = False,
    before: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="id bound from next_before")
    ] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Newest first, each with a preview of its payload (the whole is per id);
    `pending=true` hides those already replayed."""
    which = DeadLetterFilter(reason=reason.value if reason else None, device_id=device_id)
    rows = list_dead_letters(conn, which, pending=pending, before=before, limit=limit)
    return {"dead_letters": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/{dead_letter_id}", response_model=DeadLetterWithPayload)
def get_one(
    conn: Conn, _: Operator, dead_letter_id: Annotated[DeadLetterId, Path()]
) -> dict[str, Any]:
    """One dead letter with its stored payload: the whole message or bad event, or the
    first 4 KiB of a payload too large to keep (`payload_truncated`)."""
    found = get_dead_letter(conn, dead_letter_id)
    if found is None:
        raise Problem(404, "not-found", f"no dead letter {dead_letter_id}")
    return found


@router.post("/replay", response_model=Replayed)
def post_replay(body: ReplayRequest, request: Request, conn: Conn, _: Operator) -> dict[str, Any]:
    """Send matching pending dead letters to their original topics again; one that keeps
    only the head of its payload (`payload_truncated`) is never sent and stays pending."""
    which = DeadLetterFilter(
        ids=body.ids, reason=body.reason.value if body.reason else None, device_id=body.device_id
    )
    try:
        sent = replay(conn, request.app.state.publisher, which, body.limit)
    except PublishError as exc:
        raise Problem(503, "broker-unavailable", f"replay stopped: {exc}") from None
    return {"replayed": sent}
