"""What a committed batch did with each event, per device: the receipts the worker
publishes after acknowledging the batch (schemas.receipts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
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
# A dead letter as the writer files it: (device, reason, detail, the payload or event).
Refusal = tuple[str | None, str, str, bytes]


def build(
    intakes: list[Intake],
    sites: Mapping[str, str],
    accepted: Accepted,
    fresh: Collection[UUID],
    refused: Iterable[Refusal],
) -> dict[str, ReceiptBuilder]:
    """Each device's receipt once the batch is written: its events stored (`fresh`, the
    ids this batch stored) or duplicate, and the events of its dead letters (`refused`,
    as the writer filed them)."""
    receipts: defaultdict[str, ReceiptBuilder] = defaultdict(ReceiptBuilder)
    # (device, its events) of each message whose events were written or found stored; a
    # status, or a message dead-lettered whole (among `refused`), has none.
    sent: list[tuple[str, list[Event]]] = []
    for intake in intakes:
        device_id, parsed = intake.device_id, intake.parsed
        if parsed is not None and device_id is not None and device_id in sites:
            sent.append((device_id, parsed.events))
    # Usually every event of the batch was new: then no look-up (and hash) per event.
    all_new = len(fresh) == sum(len(events) for _, events in sent)
    for device_id, events in sent:
        receipt = receipts[device_id]
        if all_new:
            receipt.stored += [event.event_id for event in events]
            continue
        for event in events:
            if accepted[event.event_id][0] is event and event.event_id in fresh:
                receipt.stored.append(event.event_id)
            else:
                receipt.duplicate.append(event.event_id)
    for device_id, reason, detail, raw in refused:
        # A retained copy's live delivery was receipted already.
        if device_id is not None and reason != DeadLetterReason.RETAINED:
            for event_id in _event_ids(raw):
                receipts[device_id].refused(event_id, reason, detail)
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
