"""Turn one raw device payload (MQTT message or HTTP body) into events and dead letters."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, from_json, to_json

from schemas.dead_letters import DeadLetterReason
from schemas.events import MAX_BATCH_EVENTS, MAX_PAYLOAD_BYTES, Event, validation_context

# An event with several problems is filed under the first reason of this order that
# applies: a device writing for another device matters most, then the package key.
_REASON_BY_ERROR_TYPE: dict[str, DeadLetterReason] = {
    "device_mismatch": DeadLetterReason.DEVICE_MISMATCH,
    "invalid_gtin": DeadLetterReason.INVALID_GTIN,
    "invalid_serial": DeadLetterReason.INVALID_SERIAL,
    "invalid_code": DeadLetterReason.INVALID_CODE,
    "invalid_grai": DeadLetterReason.INVALID_GRAI,
    "naive_timestamp": DeadLetterReason.NAIVE_TIMESTAMP,
    "clock_skew": DeadLetterReason.CLOCK_SKEW,
}
_RANK = {error_type: rank for rank, error_type in enumerate(_REASON_BY_ERROR_TYPE)}
# Error types whose message already names the field (raised by schemas.events).
_SELF_DESCRIBING = frozenset(
    {
        *_REASON_BY_ERROR_TYPE,
        "timestamp_format",
        "timestamp_type",
        "code_with_key",
        "attrs_too_large",
        "attrs_nul",
        "attrs_number",
        "event_rule",
    }
)
# Bounds the size of a dead letter's detail when an event breaks many rules at once.
_MAX_ERRORS_IN_DETAIL = 5
# A dead letter of a payload over MAX_PAYLOAD_BYTES (too_large, or any reason a message
# that large was refused for) keeps only its first 4 KiB, with its size and SHA-256: enough
# to see what the device sent and to match it against the device's copy, where the whole
# (up to the broker's 1 MiB limit) would cost a megabyte per letter in the database and in
# every process that reads it. Such a head can never be replayed.
DEAD_LETTER_HEAD_BYTES = 4 * 1024

_EVENT_LIST = TypeAdapter(list[Event])


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why (part of) a payload was dead-lettered, and what to keep for a replay."""

    reason: DeadLetterReason
    detail: str
    """Human readable and specific, e.g. "gtin 5901234123458: check digit should be 7"."""
    batch_index: int | None
    """Index in {"events": [...]}; None for a single-event payload or a whole-message failure."""
    raw: bytes
    """The whole payload for a message-level failure, else the event as compact UTF-8 JSON;
    a dead letter keeps what DeadLetterPayload.of(raw) keeps of it."""


@dataclass(frozen=True, slots=True)
class DeadLetterPayload:
    """What a dead letter stores of a payload: all of it, or only its head when the payload
    is over MAX_PAYLOAD_BYTES; always the whole payload's size and SHA-256."""

    stored: bytes
    size: int
    """Bytes of the whole payload."""
    sha256: bytes
    """SHA-256 digest (32 bytes) of the whole payload."""

    @property
    def truncated(self) -> bool:
        """True when `stored` is only the first DEAD_LETTER_HEAD_BYTES: not replayable."""
        return len(self.stored) < self.size

    @classmethod
    def of(cls, payload: bytes) -> DeadLetterPayload:
        stored = payload[:DEAD_LETTER_HEAD_BYTES] if len(payload) > MAX_PAYLOAD_BYTES else payload
        return cls(stored, len(payload), hashlib.sha256(payload).digest())


@dataclass(slots=True)  # not frozen: one per message (see ingest.batcher.Received)
class ParsedMessage:
    """The outcome of one payload: valid events in payload order, and the rejected parts."""

    events: list[Event]
    rejected: list[Rejected]


def _describe(error: ErrorDetails) -> str:
    if error["type"] == "missing" and error["loc"] == ("gtin",):
        return "gtin or code is required"  # gtin is only required in the Python model
    if error["type"] in _SELF_DESCRIBING or not error["loc"]:
        return error["msg"]
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def dead_letter_reason(exc: ValidationError) -> tuple[DeadLetterReason, str]:
    """Return the most specific dead-letter reason for an Event validation error, and a detail."""
    errors = sorted(
        exc.errors(include_url=False, include_input=False),
        key=lambda error: _RANK.get(error["type"], len(_RANK)),
    )
    reason = _REASON_BY_ERROR_TYPE.get(errors[0]["type"], DeadLetterReason.SCHEMA)
    shown = errors[:_MAX_ERRORS_IN_DETAIL]
    detail = "; ".join(_describe(error) for error in shown)
    if len(errors) > len(shown):
        detail += f"; and {len(errors) - len(shown)} more"
    return reason, detail


def _validate_one(obj: Any, context: dict[str, Any], batch_index: int | None) -> Event | Rejected:
    try:
        return Event.model_validate(obj, context=context)
    except ValidationError as exc:
        reason, detail = dead_letter_reason(exc)
        return Rejected(reason, detail, batch_index, to_json(obj))


def parse_event(obj: Any, topic_device_id: str, now: datetime) -> Event | Rejected:
    """Validate one decoded JSON event object sent by `topic_device_id`, received at `now`.

    `now` must be timezone-aware. Returns the event, or a Rejected with batch_index None.
    """
    return _validate_one(obj, validation_context(topic_device_id, now), None)


def _whole_message(reason: DeadLetterReason, detail: str, payload: bytes) -> ParsedMessage:
    return ParsedMessage([], [Rejected(reason, detail, None, payload)])


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def parse_message(payload: bytes, topic_device_id: str, now: datetime) -> ParsedMessage:
    """Parse one payload from `topic_device_id`, received at `now` (timezone-aware).

    The payload is one event object or {"events": [...]} with 1 to MAX_BATCH_EVENTS
    events. Never raises for bad input: a payload that cannot be read at all gives one
    Rejected with batch_index None; otherwise each bad event gives its own Rejected and
    the valid events of the same payload are kept, in payload order.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _whole_message(
            DeadLetterReason.TOO_LARGE,
            f"payload is {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}",
            payload,
        )
    try:
        # Keys repeat in every event and are worth interning; values (ids, times) rarely do.
        document = from_json(payload, allow_inf_nan=False, cache_strings="keys")
    except ValueError as exc:  # also raised for bytes that are not UTF-8
        return _whole_message(
            DeadLetterReason.INVALID_JSON, f"not valid UTF-8 JSON: {exc}", payload
        )
    context = validation_context(topic_device_id, now)
    if not isinstance(document, dict):
        return _whole_message(
            DeadLetterReason.SCHEMA,
            f'payload is {_json_type(document)}, expected an event object or {{"events": [...]}}',
            payload,
        )
    if "events" not in document:
        outcome = _validate_one(document, context, None)
        if isinstance(outcome, Event):
            return ParsedMessage([outcome], [])
        return ParsedMessage([], [outcome])

    items = document["events"]
    if len(document) > 1:
        others = ", ".join(sorted(key for key in document if key != "events")[:5])
        return _whole_message(
            DeadLetterReason.SCHEMA, f"a batch has only the key events, got also: {others}", payload
        )
    if not isinstance(items, list):
        return _whole_message(
            DeadLetterReason.SCHEMA, f"events is {_json_type(items)}, expected an array", payload
        )
    if not 1 <= len(items) <= MAX_BATCH_EVENTS:
        return _whole_message(
            DeadLetterReason.SCHEMA,
            f"events has {len(items)} items, expected 1 to {MAX_BATCH_EVENTS}",
            payload,
        )
    # Fast path: almost every batch is entirely valid, and one call validates it all.
    try:
        return ParsedMessage(_EVENT_LIST.validate_python(items, context=context), [])
    except ValidationError:
        pass  # find out which events fail, one by one
    events: list[Event] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        outcome = _validate_one(item, context, index)
        if isinstance(outcome, Event):
            events.append(outcome)
        else:
            rejected.append(outcome)
    return ParsedMessage(events, rejected)
