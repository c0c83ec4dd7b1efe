"""Dead-letter endpoints (operator): list, and replay through the broker."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.dead_letters import MAX_REPLAY, DeadLetterFilter, list_dead_letters, replay
from api.dependencies import Conn, Limit, require
from api.problems import ERROR_RESPONSES, Problem
from devices.publisher import PublishError
from schemas.api_keys import Principal, Role
from schemas.dead_letters import DeadLetterReason
from schemas.registry import DeviceId

BIGINT_MAX = 2**63 - 1  # dead letter ids are bigint
DeadLetterId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], responses=ERROR_RESPONSES)
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


class DeadLetter(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 17,
                    "received_at": "2026-03-29T12:02:11Z",
                    "topic": "looptrack/devices/rvm-oslo-7/events",
                    "device_id": "rvm-oslo-7",
                    "reason": "invalid_gtin",
                    "detail": "events[0].gtin: check digit is 3, not 9",
                    "batch_index": 0,
                    "payload": '{"event_id": "…"}',
                    "payload_encoding": "utf-8",
                    "replayed_at": "2026-03-29T12:30:00Z",
                }
            ]
        }
    )

    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    batch_index: int | None
    payload: str
    payload_encoding: str
    replayed_at: datetime | None


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
    """Newest first; `pending=true` hides those already replayed."""
    which = DeadLetterFilter(reason=reason.value if reason else None, device_id=device_id)
    rows = list_dead_letters(conn, which, pending=pending, before=before, limit=limit)
    return {"dead_letters": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None}


@router.post("/replay", response_model=Replayed)
def post_replay(body: ReplayRequest, request: Request, conn: Conn, _: Operator) -> dict[str, Any]:
    """Send matching pending dead letters to their original topics again."""
    which = DeadLetterFilter(
        ids=body.ids, reason=body.reason.value if body.reason else None, device_id=body.device_id
    )
    try:
        sent = replay(conn, request.app.state.publisher, which, body.limit)
    except PublishError as exc:
        raise Problem(503, "broker-unavailable", f"replay stopped: {exc}") from None
    return {"replayed": sent}
