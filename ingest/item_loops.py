"""Reuse aggregates of serialised items (migrations 0010 and 0017: items, trips, duplicate
returns, trip lengths per packaging type and brand), kept in the batch's transaction.

SPEC §7 counts trips in the order of the events' `ts` (ties by event_id), whatever order
they arrive in. New events that come after everything an item has seen so far (nearly
all of them) are folded into its stored state; an event older than the item's latest
trip event makes the item be folded again from all its stored events. Either way the
result is what the loop_events view defines, which the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from schemas.named_queries import load_queries

QUERIES = load_queries("ingest", "item_loops.sql")
LOOP_TYPES = frozenset({"sold", "filled", "returned"})

ItemKey = tuple[str, str]  # (gtin, serial)
# A stored trip a refold took away, with a start: (gtin, started_at, ended_at).
ForgottenTrip = tuple[str, datetime, datetime]


@dataclass(frozen=True, slots=True)
class ItemEvent:
    """A stored event of a serialised item, as the reuse aggregates need it."""

    ts: datetime
    event_id: UUID
    type: str
    device_id: str
    site_id: str

    @property
    def order(self) -> tuple[datetime, UUID]:
        return (self.ts, self.event_id)


@dataclass(frozen=True, slots=True)
class Trip:
    end_event_id: UUID
    started_at: datetime | None
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class DuplicateReturn:
    event: ItemEvent
    previous_ts: datetime


@dataclass(slots=True)
class ItemState:
    """One item_loops row."""

    trips: int = 0
    in_loop: bool = False
    last: ItemEvent | None = None  # latest event of any type
    loop: ItemEvent | None = None  # latest sold, filled or returned
    open_sold: datetime | None = None
    open_filled: datetime | None = None
    new_trips: list[Trip] = field(default_factory=list)
    new_duplicates: list[DuplicateReturn] = field(default_factory=list)

    def fold(self, events: Iterable[ItemEvent]) -> None:
        """Apply events that all come after self.loop, in (ts, event_id) order."""
        for event in sorted(events, key=lambda e: e.order):
            if self.last is None or event.order > self.last.order:
                self.last = event
            if event.type not in LOOP_TYPES:
                continue
            if event.type == "returned":
                if self.loop is not None and self.loop.type == "returned":
                    self.new_duplicates.append(DuplicateReturn(event, self.loop.ts))
                else:
                    self.trips += 1
                    started = self.open_sold if self.open_sold is not None else self.open_filled
                    self.new_trips.append(Trip(event.event_id, started, event.ts))
                    self.open_sold = self.open_filled = None
            else:
                self.in_loop = True
                if event.type == "sold" and self.open_sold is None:
                    self.open_sold = event.ts
                elif event.type == "filled" and self.open_filled is None:
                    self.open_filled = event.ts
            self.loop = event

    def row(self) -> tuple[Any, ...]:
        last, loop = self.last, self.loop
        return (
            self.trips, self.in_loop,
            last and last.type, last and last.ts, last and last.event_id,
            loop and loop.type, loop and loop.ts, loop and loop.event_id,
            self.open_sold, self.open_filled,
        )  # fmt: skip


def track(conn: psycopg.Connection, new: dict[ItemKey, list[ItemEvent]]) -> None:
    """Fold a batch's newly stored events of serialised items into their aggregates.
    Locks the items' rows in key order, after the rollups and device rows."""
    keys = sorted(new)
    gtins, serials = [k[0] for k in keys], [k[1] for k in keys]
    conn.execute(QUERIES["add_items"], {"gtin": gtins, "serial": serials})
    states: dict[ItemKey, ItemState] = {}
    # The joins of these statements are never prepared (as the claim query in
    # ingest.writer): a plan kept from when item_loops was small would scan all of it.
    for gtin, serial, *row in conn.execute(
        QUERIES["lock_items"], {"gtin": gtins, "serial": serials}, prepare=False
    ):
        states[(gtin, serial)] = _state(row)
    redo: list[ItemKey] = []
    for key in keys:
        state, events = states[key], new[key]
        if state.loop is not None and any(
            e.type in LOOP_TYPES and e.order < state.loop.order for e in events
        ):
            redo.append(key)
        else:
            state.fold(events)
    forgotten = _refold(conn, redo, states, new) if redo else []
    _write(conn, keys, states, forgotten)


def _state(row: list[Any]) -> ItemState:
    (trips, in_loop, last_type, last_ts, last_id, loop_type, loop_ts, loop_id, open_sold,
     open_filled) = row  # fmt: skip
    # Device and site of these are not kept: only new duplicates record theirs.
    last = ItemEvent(last_ts, last_id, last_type, "", "") if last_ts is not None else None
    loop = ItemEvent(loop_ts, loop_id, loop_type, "", "") if loop_ts is not None else None
    return ItemState(trips, in_loop, last, loop, open_sold, open_filled)


def _refold(
    conn: psycopg.Connection,
    keys: list[ItemKey],
    states: dict[ItemKey, ItemState],
    new: dict[ItemKey, list[ItemEvent]],
) -> list[ForgottenTrip]:
    """Items with an event older than their latest trip event: fold all their stored trip
    events (this batch's included) from the start, replacing their trips and duplicates.
    Returns the trips taken away, whose lengths _write takes off the counts."""
    params = {"gtin": [k[0] for k in keys], "serial": [k[1] for k in keys]}
    history: dict[ItemKey, list[ItemEvent]] = {key: [] for key in keys}
    for gtin, serial, ts, event_id, type_, device_id, site_id in conn.execute(
        QUERIES["item_loop_events"], params, prepare=False
    ):
        history[(gtin, serial)].append(ItemEvent(ts, event_id, type_, device_id, site_id))
    forgotten: list[ForgottenTrip] = conn.execute(
        QUERIES["forget_item_loops"], params, prepare=False
    ).fetchall()
    for key in keys:
        fresh = ItemState()
        fresh.fold(history[key])
        candidates = [e for e in (states[key].last, fresh.last, *new[key]) if e is not None]
        fresh.last = max(candidates, key=lambda e: e.order)
        states[key] = fresh
    return forgotten


def _write(
    conn: psycopg.Connection,
    keys: list[ItemKey],
    states: dict[ItemKey, ItemState],
    forgotten: list[ForgottenTrip],
) -> None:
    columns: list[list[Any]] = [[k[0] for k in keys], [k[1] for k in keys]]
    columns += [list(values) for values in zip(*(states[k].row() for k in keys), strict=True)]
    names = ["gtin", "serial", "trips", "in_loop", "last_type", "last_ts", "last_event_id",
             "loop_type", "loop_ts", "loop_event_id", "open_sold", "open_filled"]  # fmt: skip
    conn.execute(QUERIES["set_items"], dict(zip(names, columns, strict=True)), prepare=False)
    trips = [(k, t) for k in keys for t in states[k].new_trips]
    if trips or forgotten:
        conn.execute(
            QUERIES["insert_trips"],
            {
                "end_event_id": [t.end_event_id for _, t in trips],
                "gtin": [k[0] for k, _ in trips],
                "serial": [k[1] for k, _ in trips],
                "started_at": [t.started_at for _, t in trips],
                "ended_at": [t.ended_at for _, t in trips],
                "removed_gtin": [f[0] for f in forgotten],
                "removed_started_at": [f[1] for f in forgotten],
                "removed_ended_at": [f[2] for f in forgotten],
            },
        )
    duplicates = [(k, d) for k in keys for d in states[k].new_duplicates]
    if duplicates:
        conn.execute(
            QUERIES["insert_duplicates"],
            {
                "event_id": [d.event.event_id for _, d in duplicates],
                "gtin": [k[0] for k, _ in duplicates],
                "serial": [k[1] for k, _ in duplicates],
                "ts": [d.event.ts for _, d in duplicates],
                "previous_ts": [d.previous_ts for _, d in duplicates],
                "device_id": [d.event.device_id for _, d in duplicates],
                "site_id": [d.event.site_id for _, d in duplicates],
            },
        )
