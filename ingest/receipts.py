"""What a committed batch did with each event, per device: the receipts the worker
publishes after acknowledging the batch (schemas.receipts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic_core import from_json

from ingest.intake import Intake
from schemas.dead_letters import DeadLetterReason
from schemas.events import MAX_BATCH_EVENTS, Event
from schemas.receipts import ReceiptBuilder

# (event, device, site, received_at) of the first occurrence of each event id in a batch.
Accepted = Mapping[UUID, tuple[Event, str, str, datetime]]


def build(
    intakes: list[Intake], sites: Mapping[str, str], accepted: Accepted, fresh: Collection[UUID]
) -> dict[str, ReceiptBuilder]:
    """Each device's receipt for the events of `intakes`, once the batch is written:
    `fresh` are the event ids stored by it, `sites` the registered devices' sites."""
    receipts: defaultdict[str, ReceiptBuilder] = defaultdict(ReceiptBuilder)
    for intake in intakes:
        device_id = intake.device_id
        if device_id is None or intake.online is not None:
            continue
        if intake.failure is not None:
            reason, detail = intake.failure
            if reason is not DeadLetterReason.RETAINED:  # its live delivery had a receipt
                for event_id in _event_ids(intake.message.payload):
                    receipts[device_id].refused(event_id, reason.value, detail)
            continue
        parsed = intake.parsed
        if parsed is None:
            continue
        receipt = receipts[device_id]
        if device_id not in sites:
            detail = f"device {device_id!r} is not registered"
            for event in parsed.events:
                receipt.refused(str(event.event_id), DeadLetterReason.UNKNOWN_DEVICE.value, detail)
        else:
            for event in parsed.events:
                first = accepted[event.event_id][0]
                if first is event and event.event_id in fresh:
                    receipt.stored.append(str(event.event_id))
                else:
                    receipt.duplicate.append(str(event.event_id))
        for bad in parsed.rejected:
            for event_id in _event_ids(bad.raw):
                reason = DeadLetterReason.UNKNOWN_DEVICE if device_id not in sites else bad.reason
                receipt.refused(event_id, reason.value, bad.detail)
    return dict(receipts)


def _event_ids(raw: bytes) -> list[str]:
    """The event ids a refused payload or event names, as sent; none when unreadable."""
    try:
        document: Any = from_json(raw, allow_inf_nan=False)
    except ValueError:
        return []
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        items = document["events"][:MAX_BATCH_EVENTS]
    else:
        items = [document]
    return [
        item["event_id"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("event_id"), str)
    ]
