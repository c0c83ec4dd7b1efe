"""Receipts: what the ingest did with each event a device sent, published to the device
after the commit, so a device forgets an event only once it is stored (or dead-lettered),
whatever the broker between them lost or kept."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

RECEIPT_MAX_EVENTS = 1000
"""Most event ids in one receipt message; a commit with more for a device sends several."""
RECEIPT_DETAIL_MAX_CHARS = 200
"""Longest dead-letter detail a receipt carries (the dead letter itself keeps it whole)."""


def receipts_topic(topic_root: str, device_id: str) -> str:
    """The device's receipts topic: `{root}/devices/{device_id}/receipts`."""
    return f"{topic_root}/devices/{device_id}/receipts"


class DeadLettered(BaseModel):
    """An event the ingest did not store: it is in the dead letters, with this reason."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(description="The event's id, as the device sent it.")
    reason: str = Field(description="The dead-letter reason (SPEC §5), e.g. clock_skew.")
    detail: str = Field(
        default="", description=f"Why, in words; at most {RECEIPT_DETAIL_MAX_CHARS} characters."
    )


class Receipt(BaseModel):
    """Published QoS 1 on `{root}/devices/{device_id}/receipts` after each commit that
    held events of the device: every event of the messages just acknowledged appears in
    exactly one list. A device may forget an event once a receipt names it."""

    model_config = ConfigDict(extra="ignore", frozen=True, title="Receipt")

    stored: list[str] = Field(
        default_factory=list, description="Event ids stored now (canonical UUID text)."
    )
    duplicate: list[str] = Field(
        default_factory=list,
        description="Event ids stored before (a resend or a redelivery): nothing new stored.",
    )
    dead_lettered: list[DeadLettered] = Field(
        default_factory=list,
        description="Events refused, each with its dead-letter reason; an operator can "
        "replay them (e.g. after registering the device). Sending them again changes nothing.",
    )


@dataclass(slots=True)
class ReceiptBuilder:
    """Collects one device's outcomes during a commit; `payloads()` encodes them. Stored
    and duplicate ids are kept as UUIDs (the worker's) or as text: encoded alike."""

    stored: list[UUID | str] = field(default_factory=list)
    duplicate: list[UUID | str] = field(default_factory=list)
    dead_lettered: list[dict[str, str]] = field(default_factory=list)

    def refused(self, event_id: str, reason: str, detail: str) -> None:
        if len(detail) > RECEIPT_DETAIL_MAX_CHARS:
            detail = detail[: RECEIPT_DETAIL_MAX_CHARS - 1] + "…"
        self.dead_lettered.append({"event_id": event_id, "reason": reason, "detail": detail})

    def merge(self, other: ReceiptBuilder) -> None:
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.dead_lettered += other.dead_lettered

    def payloads(self) -> Iterable[bytes]:
        """Compact JSON receipts of at most RECEIPT_MAX_EVENTS events each, filled in the
        order stored, duplicate, dead-lettered. Encoded by pydantic-core, which writes a
        UUID as its canonical text without a Python call per id."""
        room = RECEIPT_MAX_EVENTS  # events the receipt being filled has room for
        receipt: dict[str, list[Any]] = {}
        for kind, entries in (
            ("stored", self.stored),
            ("duplicate", self.duplicate),
            ("dead_lettered", self.dead_lettered),
        ):
            start = 0
            while start < len(entries):
                part = entries[start : start + room]
                receipt[kind] = part
                start += len(part)
                room -= len(part)
                if room == 0:
                    yield to_json(receipt)
                    room, receipt = RECEIPT_MAX_EVENTS, {}
        if receipt:
            yield to_json(receipt)
