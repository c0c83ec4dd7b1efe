"""Writes one batch inside the caller's transaction: events (deduplicated by event_id),
rollups, reuse aggregates, device state, seq gaps, dead letters and counters. Never
commits; the worker does."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from ingest import item_loops, receipts, seq_gaps
from ingest.directory import DeviceDirectory
from ingest.intake import Intake
from schemas.dead_letters import DeadLetterReason
from schemas.events import Event
from schemas.messages import DeadLetterPayload
from schemas.named_queries import load_queries
from schemas.receipts import ReceiptBuilder
from schemas.rollups import lock_for_counting

QUERIES = load_queries("ingest", "queries.sql")

# Column types of copy_events, for binary COPY.
_EVENT_COPY_TYPES = [
    "uuid", "timestamptz", "timestamptz", "text", "text", "text", "text", "text",
    "int4", "int8", "text", "text", "float8", "jsonb",
]  # fmt: skip
# The event types the material rollups weigh (docs/materials.md).
_WEIGHED = frozenset({"sold", "returned", "sorted"})
ROLLUP_BUCKET_S = 15 * 60  # event_counts_15m granularity
DAY_S = 24 * 3600


def prepare_connection(conn: psycopg.Connection) -> None:
    """Per-connection setup (the pool's `configure` hook): the scratch table for claims."""
    conn.execute(QUERIES["create_claims"])
    conn.commit()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a committed batch did, for counters and logs."""

    received: int  # events of readable payloads, plus whole payloads refused as such
    stored: int
    duplicates: int
    dead_lettered: int
    # Per device, what became of each event (only when store_batch was asked for them).
    receipts: dict[str, ReceiptBuilder] = field(default_factory=dict)


def store_batch(
    conn: psycopg.Connection,
    directory: DeviceDirectory,
    intakes: list[Intake],
    worker: str,
    *,
    with_receipts: bool = False,
) -> Outcome:
    """Store a batch of parsed messages in the open transaction of `conn`; with
    `with_receipts`, the outcome also says what became of each event, per device."""
    sites = directory.sites(
        conn, {i.device_id for i in intakes if i.parsed is not None and i.device_id}
    )
    # First occurrence of each event_id in the batch: (event, device, site, received_at).
    accepted: dict[UUID, tuple[Event, str, str, datetime]] = {}
    submitted = 0
    last_seen: dict[str, datetime] = {}
    dead: list[tuple[datetime, str, str | None, str, str, int | None, bytes, int, bytes]] = []
    refused: list[receipts.Refusal] = []  # the dead letters as the receipts name them
    statuses: dict[str, Intake] = {}

    def reject(intake: Intake, reason: str, detail: str, index: int | None, raw: bytes) -> None:
        # Every dead letter is bounded here: a payload over MAX_PAYLOAD_BYTES keeps its head.
        kept = DeadLetterPayload.of(raw)
        dead.append((intake.received_at, intake.message.topic, intake.device_id, reason, detail,
                     index, kept.stored, kept.size, kept.sha256))  # fmt: skip
        refused.append((intake.device_id, reason, detail, raw))

    received = 0
    for intake in intakes:
        device_id = intake.device_id
        if intake.failure is not None:
            received += 1
            reason, detail = intake.failure
            reject(intake, reason.value, detail, None, intake.message.payload)
            continue
        if intake.online is not None and device_id is not None:
            statuses[device_id] = intake  # in arrival order: the last one wins
            continue
        if intake.parsed is None or device_id is None:
            continue  # an ignored status payload
        site_id = sites.get(device_id)
        if site_id is None:
            received += 1
            unknown = DeadLetterReason.UNKNOWN_DEVICE.value
            detail = f"device {device_id!r} is not registered"
            reject(intake, unknown, detail, None, intake.message.payload)
            continue
        received += len(intake.parsed.rejected) + len(intake.parsed.events)
        for bad in intake.parsed.rejected:
            reject(intake, bad.reason.value, bad.detail, bad.batch_index, bad.raw)
        if intake.parsed.events:
            last_seen[device_id] = max(
                intake.received_at, last_seen.get(device_id, intake.received_at)
            )
            submitted += len(intake.parsed.events)
            for event in intake.parsed.events:
                accepted.setdefault(event.event_id, (event, device_id, site_id, intake.received_at))

    if statuses:
        _set_statuses(conn, statuses)
    tally = _store_events(conn, accepted) if accepted else _Tally()
    if dead:
        with conn.cursor().copy(QUERIES["copy_dead_letters"]) as copy:
            for row in dead:
                copy.write_row(row)
    outcome = Outcome(
        received=received,
        stored=tally.stored,
        duplicates=submitted - tally.stored,
        dead_lettered=len(dead),
        receipts=receipts.build(intakes, sites, accepted, tally.fresh, refused)
        if with_receipts
        else {},
    )
    # One round trip for the counting and the reading of the seq state: pipelined, the
    # statements still run one after another, each with its own snapshot, but the writer
    # waits for the database (and then for the GIL) once rather than once per statement.
    with conn.pipeline():
        if submitted or dead:
            _add_counts(conn, tally, last_seen, outcome, worker)
        if tally.seqs:
            # After _add_counts, which creates the device_state rows this locks.
            _track_seq_gaps(conn, tally.seqs)
    if tally.items:
        # Last: every worker locks rollups, then devices, then items.
        item_loops.track(conn, tally.items)
    return outcome


def _set_statuses(conn: psycopg.Connection, statuses: dict[str, Intake]) -> None:
    """Online/offline of each device from its latest status message, in one statement."""
    devices = sorted(statuses)
    conn.execute(
        QUERIES["set_statuses"],
        {
            "device_id": devices,
            "online": [statuses[d].online for d in devices],
            "received_at": [statuses[d].received_at for d in devices],
            "retained": [statuses[d].message.retained for d in devices],
        },
    )


@dataclass(slots=True)
class _Tally:
    """What the newly stored events of a batch add to the aggregates."""

    stored: int = 0
    fresh: set[UUID] = field(default_factory=set)  # the ids stored by this batch
    # (bucket start, epoch s; site; item class; type) → [Σqty, events]
    counts: dict[tuple[int, str, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    # (bucket start, epoch s; item class; reject reason) → [Σqty, events]
    rejects: dict[tuple[int, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    # (bucket start, epoch s; item class; type; stream) → [Σqty, Σmeasured g, Σqty measured]
    materials: dict[tuple[int, str, str, str | None], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0.0, 0])
    )
    # (device, days since the epoch) → events
    per_day: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    seqs: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # (item class, serial) → the item's new events, for the reuse aggregates
    items: dict[item_loops.ItemKey, list[item_loops.ItemEvent]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _claim(
    conn: psycopg.Connection, accepted: dict[UUID, tuple[Event, str, str, datetime]]
) -> set[UUID]:
    """The idempotency gate: record the batch's event ids in `event_ids`, and return those
    stored before (the duplicates), which the caller leaves out.

    Duplicates are rare (a device resending after a lost receipt, the broker redelivering
    after a crash), so the ids are first copied straight into `event_ids`: the bulk-insert
    path, about half the time of the claim by `INSERT … ON CONFLICT` from a scratch table
    (5.0 against 9.4 µs per id, 13,000 ids a batch, client side included). A stored id
    fails that COPY with a unique violation; then the batch rolls back to the savepoint
    and takes the claim, which skips the stored ids and returns them. A concurrent worker
    copying the same id makes this one wait for its commit, then take the claim as well.

    Ids go in arrival order: sorting 13,000 of them costs 28 ms as UUIDs (6 ms by their
    int), a tenth of the batch. Two batches holding some of the same ids in opposite
    orders deadlock, and one of them is retried, as with the claim alone."""

    def copy_ids(statement: str) -> None:
        with cur.copy(statement) as copy:
            copy.set_types(["uuid", "timestamptz"])
            for event_id, entry in accepted.items():
                copy.write_row((event_id, entry[0].ts))

    with conn.cursor() as cur:
        # The statement also opens the batch's transaction when nothing else has: the
        # savepoint must live inside it, never commit on its own.
        cur.execute("SAVEPOINT claim")
        try:
            copy_ids(QUERIES["copy_event_ids"])
            return set()
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT claim")
        # Ids go through a COPY rather than array parameters: many times cheaper to send.
        copy_ids(QUERIES["copy_claims"])
        # Never prepared: a query without parameters keeps the one plan made when psycopg
        # prepares it (at its 5th run), for tables as they were then. With event_ids
        # small, that plan scans all of it, and the gate took 6 ms a batch at first and
        # 200 ms at 400,000 events, growing without bound. An ANALYZE would replace the
        # plan, but nothing may rely on autovacuum; planning anew costs under 1 ms.
        return {row[0] for row in cur.execute(QUERIES["claim_event_ids"], prepare=False)}


def _store_events(
    conn: psycopg.Connection, accepted: dict[UUID, tuple[Event, str, str, datetime]]
) -> _Tally:
    """Insert the events whose id is new; tally exactly those for the aggregates."""
    duplicates = _claim(conn, accepted)
    # Sets and dicts keep their keys' hashes: no UUID.__hash__ (Python) call per event.
    fresh = set(accepted) - duplicates
    new = accepted if not duplicates else {k: v for k, v in accepted.items() if k in fresh}
    tally = _Tally(stored=len(fresh), fresh=fresh)
    counts, per_day, seqs, items = tally.counts, tally.per_day, tally.seqs, tally.items
    with conn.cursor() as cur, cur.copy(QUERIES["copy_events"]) as copy:
        copy.set_types(_EVENT_COPY_TYPES)
        for event_id, (event, device_id, site_id, received_at) in new.items():
            # str() of a StrEnum member is its value, at a fifth of `.value`'s cost (a
            # descriptor); psycopg would write a member by its name.
            type_ = str(event.type)
            reason = str(event.reason) if event.reason is not None else None
            copy.write_row(
                (
                    event_id, event.ts, received_at, device_id, site_id, type_,
                    event.item_class, event.serial, event.qty, event.seq, reason, event.stream,
                    event.weight_g, Jsonb(event.attrs) if event.attrs is not None else None,
                )
            )  # fmt: skip
            epoch = int(event.ts.timestamp())
            bucket = epoch - epoch % ROLLUP_BUCKET_S
            total = counts[(bucket, site_id, event.item_class, type_)]
            total[0] += event.qty
            total[1] += 1
            if type_ in _WEIGHED:
                weighed = tally.materials[(bucket, event.item_class, type_, event.stream)]
                weighed[0] += event.qty
                if event.weight_g is not None:
                    weighed[1] += event.weight_g
                    weighed[2] += event.qty
            if reason is not None:
                reject = tally.rejects[(bucket, event.item_class, reason)]
                reject[0] += event.qty
                reject[1] += 1
            per_day[(device_id, epoch // DAY_S)] += 1
            if event.seq is not None:
                seqs[device_id].append(event.seq)
            if event.serial is not None:
                items[(event.item_class, event.serial)].append(
                    item_loops.ItemEvent(event.ts, event_id, type_, device_id, site_id)
                )
    return tally


def _add_counts(
    conn: psycopg.Connection,
    tally: _Tally,
    last_seen: dict[str, datetime],
    outcome: Outcome,
    worker: str,
) -> None:
    """Rollups, daily device counts, last-seen and worker counters in one statement."""
    keys = sorted(tally.counts)  # one lock order for all workers
    rejects = sorted(tally.rejects)
    # None sorts as "" (the stream of sold and returned rows).
    weighed = sorted(tally.materials, key=lambda m: (m[0], m[1], m[2], m[3] or ""))
    days = sorted(tally.per_day)
    devices = sorted(last_seen)
    # The day rollups resolve item classes to packaging types: hold their slots against a product
    # being registered meanwhile (schemas.rollups), in a statement before the one counting.
    lock_for_counting(conn, {key[2] for key in keys})
    conn.execute(
        QUERIES["add_counts"],
        {
            "bucket": [datetime.fromtimestamp(k[0], UTC) for k in keys],
            "site_id": [k[1] for k in keys],
            "item_class": [k[2] for k in keys],
            "type": [k[3] for k in keys],
            "qty": [tally.counts[k][0] for k in keys],
            "events": [tally.counts[k][1] for k in keys],
            "reject_bucket": [datetime.fromtimestamp(r[0], UTC) for r in rejects],
            "reject_item_class": [r[1] for r in rejects],
            "reject_reason": [r[2] for r in rejects],
            "reject_qty": [tally.rejects[r][0] for r in rejects],
            "reject_events": [tally.rejects[r][1] for r in rejects],
            "m_bucket": [datetime.fromtimestamp(m[0], UTC) for m in weighed],
            "m_item_class": [m[1] for m in weighed],
            "m_type": [m[2] for m in weighed],
            "m_stream": [m[3] for m in weighed],
            "m_qty": [int(tally.materials[m][0]) for m in weighed],
            "m_measured_g": [tally.materials[m][1] for m in weighed],
            "m_measured_qty": [int(tally.materials[m][2]) for m in weighed],
            "day": [date.fromordinal(_EPOCH_ORDINAL + d[1]) for d in days],
            "day_device_id": [d[0] for d in days],
            "day_events": [tally.per_day[d] for d in days],
            "seen_device_id": devices,
            "last_seen": [last_seen[d] for d in devices],
            "worker": worker,
            "received": outcome.received,
            "stored": outcome.stored,
            "duplicates": outcome.duplicates,
            "dead_lettered": outcome.dead_lettered,
        },
    )


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _track_seq_gaps(conn: psycopg.Connection, seqs: dict[str, list[int]]) -> None:
    """Fold the seqs of newly stored events into each device's max seq and open gaps."""
    device_ids = sorted(seqs)
    min_seq = min(min(values) for values in seqs.values())
    # Both sent before either is read: one round trip in the caller's pipeline. The gaps
    # are read after the rows are locked, as the statements run in order.
    locked = conn.execute(QUERIES["lock_seq_state"], {"device_ids": device_ids})
    open_gaps = conn.execute(QUERIES["open_gaps"], {"device_ids": device_ids, "min_seq": min_seq})
    state: dict[str, int | None] = dict(locked.fetchall())
    gaps: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for device_id, start, end in open_gaps:
        gaps[device_id].append((start, end))
    new_max: list[tuple[str, int | None]] = []
    closed: list[tuple[str, int]] = []
    opened: list[tuple[str, int, int]] = []
    for device_id in device_ids:
        old_max, old_gaps = state.get(device_id), gaps[device_id]
        max_seq, new_gaps = seq_gaps.advance(old_max, old_gaps, seqs[device_id])
        if max_seq != old_max:
            new_max.append((device_id, max_seq))
        closed += [(device_id, start) for start, _ in set(old_gaps) - set(new_gaps)]
        opened += [(device_id, s, e) for s, e in sorted(set(new_gaps) - set(old_gaps))]
    if new_max:
        conn.execute(
            QUERIES["set_max_seq"],
            {"device_id": [d for d, _ in new_max], "max_seq": [m for _, m in new_max]},
        )
    # Deleted before inserting: a shrunk gap keeps its start and is written anew.
    if closed:
        conn.execute(
            QUERIES["delete_gaps"],
            {"device_id": [d for d, _ in closed], "gap_from": [s for _, s in closed]},
        )
    if opened:
        conn.execute(
            QUERIES["insert_gaps"],
            {
                "device_id": [d for d, _, _ in opened],
                "gap_from": [s for _, s, _ in opened],
                "gap_to": [e for _, _, e in opened],
            },
        )
