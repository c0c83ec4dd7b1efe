"""`POST /v1/devices/{device_id}/events`: devices that cannot speak MQTT post the same
payload over HTTP. The API relays it to the device's MQTT topic, so the ingest worker
validates, stores or dead-letters it exactly as if the device had published it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.body_limit import read_bounded
from api.dependencies import require, settings
from api.problems import ERROR_RESPONSES, Problem
from schemas.api_keys import Principal, Role
from schemas.messages import parse_message
from schemas.publisher import PublishError
from schemas.registry import DeviceId
from schemas.settings import Settings

router = APIRouter(prefix="/v1", tags=["devices"], responses=ERROR_RESPONSES)


class RejectedEvent(BaseModel):
    batch_index: int | None
    reason: str
    detail: str


class Relayed(BaseModel):
    """What the worker will do with the payload, as far as its content decides."""

    topic: str
    valid_events: int
    rejected: list[RejectedEvent]


@router.post(
    "/devices/{device_id}/events",
    status_code=202,
    response_model=Relayed,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {
                "description": "One event object or {\"events\": [...]} (SPEC §5, "
                "schemas/jsonschema/event-payload.schema.json)", "type": "object"}}},
        }
    },
)  # fmt: skip
async def post_events(
    device_id: Annotated[DeviceId, Path()],
    request: Request,
    caller: Annotated[Principal, Depends(require(Role.DEVICE))],
    config: Annotated[Settings, Depends(settings)],
) -> dict[str, Any]:
    """Accepts the payload once the broker holds it (202). The answer says which events
    will be dead-lettered and why; the others are stored by the ingest worker."""
    if caller.role is Role.DEVICE and caller.device_id != device_id:
        raise Problem(403, "forbidden", f"this key posts as device {caller.device_id!r} only")
    payload = await read_bounded(request)
    topic = config.events_topic(device_id)
    try:
        await run_in_threadpool(request.app.state.publisher.publish, topic, payload)
    except PublishError as exc:
        raise Problem(503, "broker-unavailable", f"payload not accepted: {exc}") from None
    parsed = parse_message(payload, device_id, datetime.now(UTC))
    return {
        "topic": topic,
        "valid_events": len(parsed.events),
        "rejected": [
            {"batch_index": r.batch_index, "reason": r.reason.value, "detail": r.detail}
            for r in parsed.rejected
        ],
    }
