"""Writes one prepared batch inside the caller's transaction: events, rollups, device
state, seq gaps, dead letters and counters. Never commits; the worker does."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from ingest import seq_gaps
from schemas.events import Event
from schemas.named_queries import load_queries

QUERIES = load_queries("ingest", "queries.sql")


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """A valid event from a registered device, ready to store."""

    event: Event
    device_id: str
    site_id: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message or event that cannot be stored, with why."""

    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    batch_index: int | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """`online`/`offline` from a device's status topic."""

    device_id: str
    online: bool
    received_at: datetime
    retained: bool


@dataclass(slots=True)
class Batch:
    """Everything one transaction writes."""

    events: list[StagedEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a committed batch did, for counters and logs."""

    stored: int
    duplicates: int
    dead_lettered: int


def prepare_connection(conn: psycopg.Connection) -> None:
    """Per-connection setup (the pool's `configure` hook): the staging table."""
    conn.execute(QUERIES["create_staging"])
    conn.commit()


def write_batch(conn: psycopg.Connection, batch: Batch, worker: str) -> Outcome:
    """Store `batch` in the open transaction of `conn`; returns what happened."""
    stored = 0
    if batch.events:
        with conn.cursor() as cur:
            with cur.copy(QUERIES["copy_staging"]) as copy:
                for staged in batch.events:
                    event = staged.event
                    copy.write_row(
                        (
                            event.event_id,
                            event.ts,
                            staged.received_at,
                            staged.device_id,
                            staged.site_id,
                            event.type.value,
                            event.gtin,
                            event.serial,
                            event.qty,
                            event.seq,
                            event.reason.value if event.reason is not None else None,
                            event.stream,
                            Jsonb(event.attrs) if event.attrs is not None else None,
                        )
                    )
            per_device = cur.execute(QUERIES["store_staged"]).fetchall()
            cur.execute(QUERIES["touch_devices"])
        stored = sum(count for _, count, _ in per_device)
        seqs = {device_id: seq for device_id, _, seq in per_device if seq}
        if seqs:
            _track_seq_gaps(conn, seqs)
    for status in batch.statuses:
        conn.execute(
            QUERIES["set_status"],
            {
                "device_id": status.device_id,
                "online": status.online,
                "received_at": status.received_at,
                "retained": status.retained,
            },
        )
    if batch.dead_letters:
        with conn.cursor().copy(QUERIES["copy_dead_letters"]) as copy:
            for dead in batch.dead_letters:
                copy.write_row(
                    (
                        dead.received_at,
                        dead.topic,
                        dead.device_id,
                        dead.reason,
                        dead.detail,
                        dead.batch_index,
                        dead.payload,
                    )
                )
    outcome = Outcome(
        stored=stored,
        duplicates=len(batch.events) - stored,
        dead_lettered=len(batch.dead_letters),
    )
    if batch.events or batch.dead_letters:
        conn.execute(
            QUERIES["add_counters"],
            {
                "worker": worker,
                "stored": outcome.stored,
                "duplicates": outcome.duplicates,
                "dead_lettered": outcome.dead_lettered,
            },
        )
    return outcome


def _track_seq_gaps(conn: psycopg.Connection, seqs: dict[str, list[int]]) -> None:
    """Fold the seqs of newly stored events into each device's max seq and open gaps."""
    device_ids = sorted(seqs)
    state: dict[str, int | None] = dict(
        conn.execute(QUERIES["lock_seq_state"], {"device_ids": device_ids}).fetchall()
    )
    min_seq = min(min(values) for values in seqs.values())
    gaps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device_id, start, end in conn.execute(
        QUERIES["open_gaps"], {"device_ids": device_ids, "min_seq": min_seq}
    ):
        gaps[device_id].append((start, end))
    for device_id in device_ids:
        old_max, old_gaps = state.get(device_id), gaps[device_id]
        new_max, new_gaps = seq_gaps.advance(old_max, old_gaps, seqs[device_id])
        if new_max != old_max:
            conn.execute(QUERIES["set_max_seq"], {"device_id": device_id, "max_seq": new_max})
        for start, _ in set(old_gaps) - set(new_gaps):
            conn.execute(QUERIES["delete_gap"], {"device_id": device_id, "gap_from": start})
        for start, end in sorted(set(new_gaps) - set(old_gaps)):
            conn.execute(
                QUERIES["insert_gap"], {"device_id": device_id, "gap_from": start, "gap_to": end}
            )
