"""Acceptance: events published by a separate process are stored exactly once, whether
sent one per message or 500 per message, and republishing them adds nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.directory import DeviceDirectory
from ingest.writer import QUERIES, prepare_connection, store_batch
from tests.conftest import Broker, Worker, service_env, wait_until
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    assert_stored_exactly,
    count,
    event,
    seed_registry,
    write_replay_file,
)
from tests.storing import intake_of, store, store_as_worker

pytestmark = pytest.mark.slow

DEVICES = ["rvm-a", "rvm-b"]


def publish(path: Path, db_url: str, broker: Broker, topic_root: str) -> None:
    """Run the device replayer as its own process and wait for every PUBACK."""
    result = subprocess.run(
        [sys.executable, "-m", "devices.replay", str(path)],
        env=service_env(db_url, broker, topic_root),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_single_and_batched_payloads_are_stored_exactly_once(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    seed_registry(db, DEVICES)
    singles = [event("sold" if i % 3 else "returned", seq=i) for i in range(5000)]
    batched = [event("returned", gtin=GTIN_CRATE, serial=f"S{i}") for i in range(5000)]
    messages: list[tuple[str, Any]] = [(DEVICES[0], e) for e in singles]
    messages += [
        (DEVICES[1], {"events": batched[i : i + 500]}) for i in range(0, len(batched), 500)
    ]
    replay = write_replay_file(tmp_path / "events.jsonl", messages)
    worker: Worker = make_worker()

    publish(replay, db_url, broker, topic_root)
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 10_000, 60, "10,000 events")
    worker.assert_running()

    # The same payloads again: all duplicates, nothing new stored or counted.
    publish(replay, db_url, broker, topic_root)
    wait_until(
        lambda: count(db, "SELECT coalesce(sum(duplicates), 0) FROM ingest_counters") >= 10_000,
        120,
        "10,000 duplicates counted",
    )
    assert worker.terminate() == 0

    assert count(db, "SELECT count(*) FROM events") == 10_000
    assert count(db, "SELECT count(DISTINCT event_id) FROM events") == 10_000
    expected_ids = {e["event_id"] for e in singles + batched}
    stored_ids = {str(r[0]) for r in db.execute("SELECT event_id FROM events")}
    assert stored_ids == expected_ids
    assert count(db, "SELECT count(*) FROM dead_letters") == 0
    # Aggregates count each event once, per type and product.
    sold = sum(1 for e in singles if e["type"] == "sold")
    rollup = dict(
        db.execute(
            "SELECT item_class || ':' || type, sum(qty)::int FROM event_counts_15m GROUP BY 1"
        ).fetchall()
    )
    assert rollup == {
        f"{GTIN_COLA.zfill(14)}:sold": sold,
        f"{GTIN_COLA.zfill(14)}:returned": 5000 - sold,
        f"{GTIN_CRATE.zfill(14)}:returned": 5000,
    }
    received, stored, duplicates, dead = db.execute(
        "SELECT received, stored, duplicates, dead_lettered FROM ingest_counters"
    ).fetchone() or (0, 0, 0, 0)
    # Every event was sent twice: 20,000 received, each counted once, as stored or duplicate.
    assert (received, stored, duplicates, dead) == (20_000, 10_000, 10_000, 0)
    # Device liveness and seq tracking saw the single-event device's 0..4999 without gaps.
    assert count(db, "SELECT count(*) FROM seq_gaps") == 0
    assert count(db, "SELECT max_seq FROM device_state WHERE device_id = %s", DEVICES[0]) == 4999
    assert count(db, "SELECT count(*) FROM device_state WHERE online = false") == 2


def test_a_batch_holding_some_stored_ids_stores_exactly_the_new_ones(
    db: psycopg.Connection[Any],
) -> None:
    """The gate copies a batch's ids straight into event_ids and, when one was stored
    before, rolls back to its savepoint and claims them one by one: the new events of
    the batch are stored and counted once, the old ones are counted as duplicates."""
    seed_registry(db, DEVICES)
    first = [event("returned") for _ in range(5)]
    second = first[2:] + [event("sold") for _ in range(4)]
    assert store(db, "rvm-a", first).stored == 5

    outcome = store(db, "rvm-b", second)

    assert (outcome.stored, outcome.duplicates) == (4, 3)
    assert outcome.receipts == {}
    assert_stored_exactly(db, first + second[3:])
    assert count(db, "SELECT count(*) FROM event_ids") == 9


def test_a_worker_holding_an_id_another_is_storing_waits_and_skips_it(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """Two workers with one event in common: the second's copy of the ids waits for the
    first's commit, then takes the claim and stores only its other event. Had the first
    rolled back, the second would store both; had it not waited, the event would be
    stored twice."""
    seed_registry(db, DEVICES)
    shared, mine, theirs = event("returned"), event("returned"), event("sold")
    results: list[Any] = []
    with psycopg.connect(db_url) as first:
        prepare_connection(first)
        with first.transaction():
            directory = DeviceDirectory(QUERIES["known_devices"])
            store_batch(first, directory, [intake_of("rvm-a", [shared, theirs])], "first")
            other = threading.Thread(
                target=lambda: results.append(
                    store_as_worker(db_url, "second", "rvm-b", [mine, shared])
                )
            )
            other.start()
            # The second batch waits at the shared id, for the first's commit.
            wait_until(lambda: waiting_on_a_lock(db), 30, "the second batch to wait")
            assert results == []
        other.join(timeout=30)
    assert [(o.stored, o.duplicates) for o in results] == [(1, 1)]
    assert_stored_exactly(db, [shared, theirs, mine])


def waiting_on_a_lock(db: psycopg.Connection[Any]) -> bool:
    return (
        count(
            db,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        > 0
    )
