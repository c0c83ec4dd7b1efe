"""Reuse aggregates kept by the ingest (trips, trip starts, duplicate returns, latest
event per item): equal to SPEC §7 (the oracle in tests.factories) whatever order events
arrive in, under concurrent workers, and built the same by migration 0010 from events
stored before it."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest import item_loops
from schemas.migrations import load_migrations, migrate
from tests.factories import (
    GTIN_CRATE,
    Scan,
    assert_item_loops,
    event,
    item_by_spec,
    scans,
    seed_registry,
)
from tests.older_schema import before_item_class
from tests.storing import store, store_as_worker

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
KINDS = ["filled", "sold", "returned", "returned", "washed", "rejected"]


def histories(rng: random.Random, items: int) -> dict[str, list[dict[str, Any]]]:
    """Per serial, a made-up history: loops with duplicate returns, items first seen at
    their return, other event types between, and some events sharing a timestamp."""
    result = {}
    for n in range(items):
        ts = T0 + timedelta(hours=rng.randrange(48))
        events = []
        for _ in range(rng.randrange(1, 14)):
            kind = rng.choice(KINDS)
            extra = {"reason": "damaged"} if kind == "rejected" else {}
            events.append(event(kind, gtin=GTIN_CRATE, serial=f"C{n}", ts=ts, **extra))
            if rng.random() < 0.8:  # else the next event has the same ts
                ts += timedelta(hours=rng.randrange(1, 100))
        result[f"C{n}"] = events
    return result


def trips_by_spec(items: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Each serial's trips, from the events made for it (tests.factories.item_by_spec)."""
    return {serial: len(item_by_spec(scans(events)).trips) for serial, events in items.items()}


def stored_trips(db: psycopg.Connection[Any]) -> dict[str, int]:
    return dict(db.execute("SELECT serial, trips FROM item_loops").fetchall())


def in_batches(rng: random.Random, events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    shuffled = rng.sample(events, len(events))
    cuts = sorted(rng.sample(range(1, len(shuffled)), min(20, len(shuffled) - 1)))
    return [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]


def test_the_oracle_counts_a_history_as_counted_by_hand() -> None:
    """The oracle the tests below check the aggregates with, on one item's history
    given out of order (event ids decide between events of the same ts)."""
    day = [T0 + timedelta(days=d) for d in range(12)]
    history = [
        Scan("g", "s", day[0], uuid.UUID(int=1), "returned"),  # first seen at its return
        Scan("g", "s", day[1], uuid.UUID(int=2), "returned"),  # duplicate
        Scan("g", "s", day[2], uuid.UUID(int=3), "washed"),  # no loop event
        Scan("g", "s", day[3], uuid.UUID(int=4), "returned"),  # duplicate still
        Scan("g", "s", day[4], uuid.UUID(int=5), "filled"),
        Scan("g", "s", day[5], uuid.UUID(int=6), "sold"),  # the trip starts here
        Scan("g", "s", day[6], uuid.UUID(int=7), "sold"),
        Scan("g", "s", day[7], uuid.UUID(int=8), "returned"),
        Scan("g", "s", day[8], uuid.UUID(int=9), "filled"),  # a trip without a sale
        Scan("g", "s", day[9], uuid.UUID(int=11), "returned"),  # after the sold of its ts
        Scan("g", "s", day[9], uuid.UUID(int=10), "sold"),
        Scan("g", "s", day[10], uuid.UUID(int=12), "filled"),  # open
        Scan("g", "s", day[11], uuid.UUID(int=13), "rejected"),
    ]
    item = item_by_spec(list(reversed(history)))
    assert [(end.event_id.int, start) for end, start in item.trips] == [
        (1, None), (8, day[5]), (11, day[9])
    ]  # fmt: skip
    assert [(e.event_id.int, before) for e, before in item.duplicates] == [
        (2, day[0]), (4, day[1])
    ]  # fmt: skip
    assert (item.last.event_id.int, item.loop and item.loop.event_id.int) == (13, 12)
    assert (item.ever_in_loop, item.open_sold, item.open_filled) == (True, None, day[10])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_arrival_gives_the_trips_of_ts_order(
    db: psycopg.Connection[Any], seed: int
) -> None:
    rng = random.Random(seed)
    seed_registry(db, ["rvm-1"])
    items = histories(rng, 40)
    everything = [e for events in items.values() for e in events]
    # In time order first for half of the items (the fast path), then the rest shuffled in,
    # so late events land before, between and after what an item has already seen.
    early = [e for serial, events in items.items() if int(serial[1:]) % 2 for e in events]
    early.sort(key=lambda e: e["ts"])
    store(db, "rvm-1", early)
    for batch in in_batches(rng, [e for e in everything if e not in early]):
        store(db, "rvm-1", batch)

    assert stored_trips(db) == trips_by_spec(items)
    assert_item_loops(db)


def test_concurrent_workers_on_the_same_items_agree_with_ts_order(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    rng = random.Random(7)
    seed_registry(db, ["rvm-1", "rvm-2"])
    items = histories(rng, 30)
    batches = in_batches(rng, [e for events in items.values() for e in events])
    failures: list[BaseException] = []

    def worker(device: str, mine: list[list[dict[str, Any]]]) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                for batch in mine:
                    store(conn, device, batch)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    threads = [
        threading.Thread(target=worker, args=("rvm-1", batches[0::2])),
        threading.Thread(target=worker, args=("rvm-2", batches[1::2])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert stored_trips(db) == trips_by_spec(items)
    assert_item_loops(db)


def test_a_batch_waits_for_the_batch_holding_its_item_before_reading_it(
    db: psycopg.Connection[Any], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers on a stored item: the second waits at the first's lock on the item's
    row, taken before the first reads the item's state, and then folds onto what the
    first committed. Read without that lock, both would fold onto the state from before
    them, and the second's trip would be lost."""
    seed_registry(db, ["rvm-1", "rvm-2"])
    store(db, "rvm-1", [event("sold", gtin=GTIN_CRATE, serial="C1", ts=T0)])
    # Nothing else in common: other days, devices and workers, so no rollup row or
    # counter makes the second batch wait before it comes to the item.
    second = [
        event("sold", gtin=GTIN_CRATE, serial="C1", ts=T0 + timedelta(days=2)),
        event("returned", gtin=GTIN_CRATE, serial="C1", ts=T0 + timedelta(days=3)),
    ]
    failures: list[BaseException] = []

    def store_second() -> None:
        try:
            store_as_worker(db_url, "tests-2", "rvm-2", second)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    other = threading.Thread(target=store_second)
    fold_stored = item_loops._fold_stored

    def fold_then_let_the_other_batch_in(*args: Any) -> Any:
        forgotten = fold_stored(*args)
        if other.ident is None:  # the first batch, having read the item's state
            other.start()
            deadline = time.monotonic() + 30
            with psycopg.connect(db_url, autocommit=True) as watcher:
                while other.is_alive() and time.monotonic() < deadline:
                    waiting = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    ).fetchone()
                    if waiting and waiting[0]:
                        break
                    time.sleep(0.01)
        return forgotten

    monkeypatch.setattr(item_loops, "_fold_stored", fold_then_let_the_other_batch_in)
    store(
        db, "rvm-1", [event("returned", gtin=GTIN_CRATE, serial="C1", ts=T0 + timedelta(hours=1))]
    )
    other.join(timeout=60)
    assert not failures, failures
    assert stored_trips(db) == {"C1": 2}
    assert_item_loops(db)


def test_migration_rebuilds_the_aggregates_the_ingest_keeps(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    rng = random.Random(11)
    seed_registry(db, ["rvm-1"])
    for batch in in_batches(rng, [e for events in histories(rng, 40).values() for e in events]):
        store(db, "rvm-1", batch)
    tables = {
        "item_loops": "SELECT * FROM item_loops ORDER BY item_class, serial",
        "item_trips": "SELECT * FROM item_trips ORDER BY end_event_id",
        "duplicate_returns": "SELECT * FROM duplicate_returns ORDER BY event_id",
    }
    kept = {name: db.execute(query).fetchall() for name, query in tables.items()}
    assert kept["item_trips"] and kept["duplicate_returns"]

    # A database from before migration 0010, with the same events: it has 0003's
    # loop_events view, which 0010 builds the aggregates from and 0020 drops, and its
    # columns are named as before 0021.
    before_item_class(db)
    (view,) = (m.sql for m in load_migrations() if m.version == "0003_loop_events")
    db.execute(view.encode())
    db.execute("DROP TABLE item_loops, item_trips, duplicate_returns")
    db.execute(
        "DELETE FROM schema_migrations"
        " WHERE version IN ('0010_item_loops', '0020_drop_loop_events')"
    )
    assert migrate(db_url) == ["0010_item_loops", "0020_drop_loop_events", "0021_item_class"]
    assert {name: db.execute(query).fetchall() for name, query in tables.items()} == kept
