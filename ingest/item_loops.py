"""Reuse aggregates of serialised items (migrations 0010 and 0017: items, trips, duplicate
returns, trip lengths per packaging type and brand), kept in the batch's transaction.

SPEC §7 counts trips in the order of the events' `ts` (ties by event_id), whatever order
they arrive in. New events that come after everything an item has seen so far (nearly
all of them) are folded into its stored state; an event older than the item's latest
trip event makes the item be folded again from all its stored events.

ItemState.fold is the one definition of what a trip, its start and a duplicate return
are: no SQL restates it (migration 0020 dropped the loop_events view that did). The tests
check what it keeps against SPEC §7 written out on their side (tests/factories.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import psycopg

from schemas.named_queries import load_queries

QUERIES = load_queries("ingest", "item_loops.sql")
# The events that open or close trips; the others only count as an item's latest event.
LOOP_TYPES = frozenset({"sold", "filled", "returned"})

ItemKey = tuple[str, str]  # (item class, serial)
# A stored trip a refold took away, with a start: (item class, started_at, ended_at).
ForgottenTrip = tuple[str, datetime, datetime]


class ItemEvent(NamedTuple):
    """A stored event of a serialised item, as the reuse aggregates need it. Its first
    fields make events compare in SPEC §7's order, (ts, event_id): the ids are unique,
    so the fields after them never decide (a tuple compares in C, many times faster
    than a sort key)."""

    ts: datetime
    event_id: UUID
    type: str
    device_id: str
    site_id: str

    @property
    def order(self) -> tuple[datetime, UUID]:
        return (self.ts, self.event_id)


class Trip(NamedTuple):
    end_event_id: UUID
    started_at: datetime | None
    ended_at: datetime


class DuplicateReturn(NamedTuple):
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

    def fold(self, events: list[ItemEvent]) -> None:
        """Apply events that all come after self.loop, in (ts, event_id) order (the
        order this sorts `events` into)."""
        if not events:
            return
        events.sort()
        if self.last is None or events[-1] > self.last:
            self.last = events[-1]
        loop = self.loop
        for event in events:
            kind = event.type
            if kind == "returned":
                if loop is not None and loop.type == "returned":
                    self.new_duplicates.append(DuplicateReturn(event, loop.ts))
                else:
                    self.trips += 1
                    started = self.open_sold if self.open_sold is not None else self.open_filled
                    self.new_trips.append(Trip(event.event_id, started, event.ts))
                    self.open_sold = self.open_filled = None
            elif kind == "sold":
                self.in_loop = True
                if self.open_sold is None:
                    self.open_sold = event.ts
            elif kind == "filled":
                self.in_loop = True
                if self.open_filled is None:
                    self.open_filled = event.ts
            else:
                continue
            loop = event
        self.loop = loop

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
    states: dict[ItemKey, ItemState] = {}
    for key in keys:
        states[key] = state = ItemState()
        state.fold(new[key])
    # Items new to the aggregates are written here; those with a row come back, locked.
    # Prepared, as it joins no table; the statements below that join item_loops or events
    # are not (as the claim query in ingest.writer): a plan kept from when the table was
    # small would scan all of it.
    stored: list[ItemKey] = [
        (item_class, serial)
        for item_class, serial in conn.execute(QUERIES["add_items"], _columns(keys, states))
    ]
    forgotten: list[ForgottenTrip] = []
    if stored:
        stored.sort()
        forgotten = _fold_stored(conn, stored, states, new)
        conn.execute(QUERIES["set_items"], _columns(stored, states), prepare=False)
    _write_trips(conn, keys, states, forgotten)


def _columns(keys: list[ItemKey], states: dict[ItemKey, ItemState]) -> dict[str, list[Any]]:
    """The item_loops rows of `keys`, as the arrays add_items and set_items take."""
    names = ["trips", "in_loop", "last_type", "last_ts", "last_event_id", "loop_type",
             "loop_ts", "loop_event_id", "open_sold", "open_filled"]  # fmt: skip
    rows = [states[k].row() for k in keys]
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return {"item_class": [k[0] for k in keys], "serial": [k[1] for k in keys], **columns}


def _fold_stored(
    conn: psycopg.Connection,
    keys: list[ItemKey],
    states: dict[ItemKey, ItemState],
    new: dict[ItemKey, list[ItemEvent]],
) -> list[ForgottenTrip]:
    """Items that had a row: their new events folded into their stored state instead,
    or, where one is older than their latest trip event, all their events from the start
    (_refold). Returns the trips a refold took away."""
    params = {"item_class": [k[0] for k in keys], "serial": [k[1] for k in keys]}
    redo: list[ItemKey] = []
    for item_class, serial, *row in conn.execute(QUERIES["stored_items"], params, prepare=False):
        key = (item_class, serial)
        state, events = _state(row), new[key]
        if state.loop is not None and any(
            e.type in LOOP_TYPES and e.order < state.loop.order for e in events
        ):
            redo.append(key)
        else:
            state.fold(events)
        states[key] = state
    return _refold(conn, redo, states, new) if redo else []


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
    Returns the trips taken away, whose lengths _write_trips takes off the counts."""
    params = {"item_class": [k[0] for k in keys], "serial": [k[1] for k in keys]}
    history: dict[ItemKey, list[ItemEvent]] = {key: [] for key in keys}
    for item_class, serial, ts, event_id, type_, device_id, site_id in conn.execute(
        QUERIES["item_loop_events"], {**params, "types": sorted(LOOP_TYPES)}, prepare=False
    ):
        history[(item_class, serial)].append(ItemEvent(ts, event_id, type_, device_id, site_id))
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


def _write_trips(
    conn: psycopg.Connection,
    keys: list[ItemKey],
    states: dict[ItemKey, ItemState],
    forgotten: list[ForgottenTrip],
) -> None:
    """New trips and duplicate returns, and the trip lengths added and taken away."""
    trips = [(k, t) for k in keys for t in states[k].new_trips]
    duplicates = [(k, d) for k in keys for d in states[k].new_duplicates]
    if not (trips or duplicates or forgotten):
        return
    # Trips of an item class with the same length go to the counts as one, their number as its
    # sign: exact, the counts add sign x length. A trip a refold took away and put back
    # as it was cancels out.
    lengths: dict[tuple[str, timedelta], list[Any]] = {}
    for (item_class, _), trip in trips:
        if trip.started_at is not None:
            length = lengths.setdefault(
                (item_class, trip.ended_at - trip.started_at), [trip.started_at, trip.ended_at, 0]
            )
            length[2] += 1
    for item_class, started_at, ended_at in forgotten:
        length = lengths.setdefault((item_class, ended_at - started_at), [started_at, ended_at, 0])
        length[2] -= 1
    counted = [(item_class, *length) for (item_class, _), length in lengths.items() if length[2]]
    conn.execute(
        QUERIES["insert_trips"],
        {
            "end_event_id": [t.end_event_id for _, t in trips],
            "item_class": [k[0] for k, _ in trips],
            "serial": [k[1] for k, _ in trips],
            "started_at": [t.started_at for _, t in trips],
            "ended_at": [t.ended_at for _, t in trips],
            "d_event_id": [d.event.event_id for _, d in duplicates],
            "d_item_class": [k[0] for k, _ in duplicates],
            "d_serial": [k[1] for k, _ in duplicates],
            "d_ts": [d.event.ts for _, d in duplicates],
            "d_previous_ts": [d.previous_ts for _, d in duplicates],
            "d_device_id": [d.event.device_id for _, d in duplicates],
            "d_site_id": [d.event.site_id for _, d in duplicates],
            "l_item_class": [c[0] for c in counted],
            "l_started_at": [c[1] for c in counted],
            "l_ended_at": [c[2] for c in counted],
            "l_sign": [c[3] for c in counted],
        },
    )
