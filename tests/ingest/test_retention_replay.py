"""Acceptance: once the retention job has pruned an event and its id, the same event sent
again is refused as clock_skew (it is older than the retention), never stored a second
time; an event re-sent within the retention is still a duplicate. Real broker and worker,
with LOOPTRACK_RETENTION_DAYS=2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from schemas.retention import prune
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import assert_identity, count, event, seed_registry
from tests.storing import store

DEVICE = "rvm-old"
RETENTION_DAYS = 2


def test_a_resent_event_whose_id_was_pruned_is_refused_not_stored_again(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
) -> None:
    seed_registry(db, [DEVICE])
    now = datetime.now(UTC)
    old = event("returned", ts=now - timedelta(days=4))  # past 2 days and the day of lag
    recent = event("returned", ts=now - timedelta(hours=1))
    store(db, DEVICE, [old])
    store(db, DEVICE, [recent])
    report = prune(db_url, timedelta(days=RETENTION_DAYS))
    assert report is not None and report.deleted["event_ids"] == 1

    make_worker(LOOPTRACK_RETENTION_DAYS=str(RETENTION_DAYS))
    publish_all(
        broker,
        topic_root,
        [(DEVICE, json.dumps(old).encode()), (DEVICE, json.dumps(recent).encode())],
    )
    # Two received by the worker, after the two the test stored itself.
    wait_until(
        lambda: count(db, "SELECT sum(received) FROM ingest_counters") == 4, 30, "both handled"
    )
    assert [str(r[0]) for r in db.execute("SELECT event_id FROM events")] == [recent["event_id"]]
    assert count(db, "SELECT count(*) FROM event_ids") == 1
    assert count(db, "SELECT sum(returned) FROM return_counts_daily") == 2  # each counted once
    [(reason, detail, payload)] = db.execute(
        "SELECT reason, detail, payload FROM dead_letters"
    ).fetchall()
    assert reason == "clock_skew"
    assert "events are kept 2 days (LOOPTRACK_RETENTION_DAYS)" in detail
    assert json.loads(payload)["event_id"] == old["event_id"]
    assert db.execute(
        "SELECT sum(stored), sum(duplicates), sum(dead_lettered) FROM ingest_counters"
        " WHERE worker <> 'tests'"
    ).fetchone() == (0, 1, 1)
    assert_identity(db)
