"""Turns received MQTT messages into parsed events, statuses and rejects: CPU only, no
database, so it runs while the previous batch is being written."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.batcher import Received
from schemas.dead_letters import DeadLetterReason
from schemas.messages import ParsedMessage, parse_message

log = logging.getLogger("looptrack.ingest")


@dataclass(slots=True)  # not frozen: see ingest.batcher.Received
class Intake:
    """One received message after parsing: exactly one of parsed/status/failure is set
    (none for an ignored status)."""

    message: Received
    device_id: str | None
    received_at: datetime
    parsed: ParsedMessage | None = None
    online: bool | None = None
    failure: tuple[DeadLetterReason, str] | None = None


def route(topic: str, prefix: str) -> tuple[str | None, str]:
    """(device_id, 'events' | 'status') from `{root}/devices/{id}/{kind}`; prefix is
    `{root}/devices/`."""
    if not topic.startswith(prefix):
        return None, ""
    device_id, _, kind = topic[len(prefix) :].partition("/")
    if not device_id or kind not in ("events", "status"):
        return None, ""
    return device_id, kind


def take_in(message: Received, prefix: str) -> Intake:
    """Parse one message; never raises (a parser bug becomes an internal_error reject)."""
    received_at = datetime.fromtimestamp(message.received_at, UTC)
    device_id, kind = route(message.topic, prefix)
    if device_id is None:
        # Only possible if the subscription filters change; keep it visible anyway.
        return Intake(
            message, None, received_at, failure=(DeadLetterReason.SCHEMA, "unexpected topic")
        )
    if kind == "status":
        text = message.payload.decode("utf-8", "replace").strip()
        if text not in ("online", "offline"):
            log.warning("ignoring status topic=%s payload=%.40r", message.topic, text)
            return Intake(message, device_id, received_at)
        return Intake(message, device_id, received_at, online=text == "online")
    if message.retained:
        # The worker subscribes with retain handling 2, so only a broker ignoring that
        # replays a stored retained message; its live delivery was already ingested.
        detail = "a retained copy replayed by the broker; publish events with retain off"
        return Intake(message, device_id, received_at, failure=(DeadLetterReason.RETAINED, detail))
    try:
        parsed = parse_message(message.payload, device_id, received_at)
    except Exception as exc:  # noqa: BLE001 - boundary: one poison message must not stall ingest
        log.error(
            "parser failed topic=%s device=%s\n%s", message.topic, device_id, traceback.format_exc()
        )
        return Intake(
            message, device_id, received_at, failure=(DeadLetterReason.INTERNAL_ERROR, repr(exc))
        )
    return Intake(message, device_id, received_at, parsed=parsed)
