"""A message whose content the writer or the database refused: the parts it can be stored
in one by one, and the dead letter of a part that still fails."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import psycopg
from pydantic_core import from_json, to_json

from ingest.intake import Intake
from schemas.dead_letters import DeadLetterReason
from schemas.events import Event
from schemas.messages import ParsedMessage, Rejected

# Longest exception text kept in a dead letter's detail (characters).
MAX_DETAIL_CHARS = 300


def split(intake: Intake) -> list[Intake]:
    """The message as parts that can be committed on their own: each valid event, then its
    rejected events together; the message itself when there is nothing smaller."""
    parsed = intake.parsed
    if parsed is None or len(parsed.events) + len(parsed.rejected) <= 1:
        return [intake]
    parts = [replace(intake, parsed=ParsedMessage([event], [])) for event in parsed.events]
    if parsed.rejected:
        parts.append(replace(intake, parsed=ParsedMessage([], parsed.rejected)))
    return parts


def dead_letter(part: Intake, cause: Exception) -> Intake:
    """`part` as an internal_error dead letter saying what failed: one event of a batch
    keeps its index and its own JSON; anything else becomes the whole message, raw."""
    detail = describe(cause)
    parsed = part.parsed
    if parsed is not None and len(parsed.events) == 1 and not parsed.rejected:
        index, raw = _locate(part.message.payload, parsed.events[0])
        if index is not None:
            rejected = Rejected(DeadLetterReason.INTERNAL_ERROR, detail, index, raw)
            return replace(part, parsed=ParsedMessage([], [rejected]))
    failure = (DeadLetterReason.INTERNAL_ERROR, detail)
    return replace(part, parsed=None, online=None, failure=failure)


def describe(cause: Exception) -> str:
    """A dead letter's detail for `cause`: bounded, on one line, free of NUL characters
    (which PostgreSQL text cannot hold)."""
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 1] + "…"
    who = "the database refused it" if isinstance(cause, psycopg.Error) else "the worker failed"
    return f"not stored, {who} ({text}); replay once fixed".replace("\x00", "\\x00")


def _locate(payload: bytes, event: Event) -> tuple[int | None, bytes]:
    """(index in {"events": [...]}, that item as compact JSON) of `event`'s first
    occurrence in `payload`; (None, payload) when the payload is not a batch holding it."""
    try:
        document = from_json(payload, allow_inf_nan=False)
    except ValueError:
        return None, payload
    items = document.get("events") if isinstance(document, dict) else None
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, dict) and _same_id(item.get("event_id"), event.event_id):
                return index, to_json(item)
    return None, payload


def _same_id(value: object, event_id: UUID) -> bool:
    try:
        return isinstance(value, str) and UUID(value) == event_id
    except ValueError:
        return False
