"""No input stops ingest: what the writer or the database fails on is dead-lettered, with
the failing event's index, the message is acknowledged and the stream goes on."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ingest import item_loops
from ingest.worker import IngestWorker, open_pool
from schemas.settings import Settings
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import GTIN_CRATE, assert_identity, count, event, seed_registry

DEVICE = "rvm-poison"
# The payload that once stopped every worker for good: year 0 once shifted to UTC.
YEAR_ZERO = {
    "event_id": "5f0c4a52-0000-4000-8000-00000000dead",
    "ts": "0001-01-01T00:00:00+14:00",
    "type": "returned",
    "gtin": "7310865004703",
}


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def stored(db: psycopg.Connection[Any], event_id: str) -> bool:
    return count(db, "SELECT count(*) FROM events WHERE event_id = %s", event_id) == 1


def test_year_zero_is_clock_skew_and_the_next_event_is_stored(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE])
    worker = make_worker()
    good = event()
    publish_all(broker, topic_root, [(DEVICE, compact(YEAR_ZERO)), (DEVICE, compact(good))])
    wait_until(lambda: stored(db, good["event_id"]), 30, "the good event after the poison")
    reason, detail, payload = db.execute(
        "SELECT reason, detail, payload FROM dead_letters"
    ).fetchone()  # type: ignore[misc]
    assert reason == "clock_skew"
    assert "before 2000-01-01T00:00:00Z" in detail
    assert json.loads(payload) == YEAR_ZERO
    worker.assert_running()
    assert count(db, "SELECT count(*) FROM events") == 1


@contextmanager
def worker_in_process(db_url: str, broker: Broker, topic_root: str) -> Iterator[threading.Event]:
    """The ingest worker run in this process (so a test can plant a bug in the writer);
    yields its stop event once it is subscribed, and stops it at the end."""
    settings = Settings(
        database_url=db_url,
        mqtt_url=broker.url,
        topic_root=topic_root,
        mqtt_group=f"g{uuid.uuid4().hex[:8]}",
        ingest_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
    )
    pool = open_pool(settings)
    worker = IngestWorker(settings, pool)
    subscribed = threading.Event()
    on_subscribe = worker.client.on_subscribe

    def note_subscription(*args: Any) -> None:
        on_subscribe(*args)
        subscribed.set()

    worker.client.on_subscribe = note_subscription
    stop = threading.Event()
    drained: list[bool] = []
    runner = threading.Thread(target=lambda: drained.append(worker.run(stop)))
    runner.start()
    try:
        assert subscribed.wait(30), "worker did not subscribe"
        yield stop
        assert not stop.is_set(), "the worker stopped on its own"
    finally:
        stop.set()
        runner.join(60)
        pool.close()
    assert drained == [True]


def test_a_writer_bug_costs_one_dead_letter_not_the_stream(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Python exception in the writer (a bug a device's input reached) is logged with its
    traceback, the event it fails on is dead-lettered with its index, and ingest goes on."""
    seed_registry(db, [DEVICE])
    track: Callable[..., None] = item_loops.track

    def track_with_bug(conn: psycopg.Connection[Any], items: dict[Any, Any]) -> None:
        if any(serial == "BUG" for _, serial in items):
            raise ValueError("year 0 is out of range")
        track(conn, items)

    monkeypatch.setattr(item_loops, "track", track_with_bug)
    caplog.set_level(logging.ERROR, logger="looptrack.ingest")
    batch = [
        event("sold", gtin=GTIN_CRATE, serial="A1"),
        event("returned", gtin=GTIN_CRATE, serial="BUG"),
        event("returned", gtin=GTIN_CRATE, serial="C3"),
    ]
    after = event("returned", gtin=GTIN_CRATE, serial="D4")
    with worker_in_process(db_url, broker, topic_root):
        publish_all(broker, topic_root, [(DEVICE, compact({"events": batch}))])
        publish_all(broker, topic_root, [(DEVICE, compact(after))])
        wait_until(lambda: stored(db, after["event_id"]), 30, "the event after the bug")
    assert [stored(db, e["event_id"]) for e in batch] == [True, False, True]
    [(reason, detail, index, payload)] = db.execute(
        "SELECT reason, detail, batch_index, payload FROM dead_letters"
    ).fetchall()
    assert (reason, index) == ("internal_error", 1)
    assert "the worker failed (ValueError: year 0 is out of range)" in detail
    assert json.loads(payload) == batch[1]
    # The good events of the batch made their items' reuse aggregates, the bad one none.
    serials = {row[0] for row in db.execute("SELECT serial FROM item_loops")}
    assert serials == {"A1", "C3", "D4"}
    assert "Traceback" in caplog.text and "ValueError: year 0 is out of range" in caplog.text
    assert_identity(db)
