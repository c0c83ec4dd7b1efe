"""Events stored the way the ingest worker stores them (parser, writer, aggregates), minus
the broker: for API tests that need a history in the database, not a delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest.batcher import Received
from ingest.directory import DeviceDirectory
from ingest.intake import Intake, take_in
from ingest.writer import QUERIES, Outcome, prepare_connection, store_batch

TOPIC_ROOT = "looptrack"


def intake_of(device_id: str, events: list[dict[str, Any]]) -> Intake:
    """`events` (as a device sends them) from `device_id` in one message, parsed as the
    worker parses it, received just after the latest of them so no clock check refuses
    them."""
    latest = max(datetime.fromisoformat(e["ts"]) for e in events)
    received = max(latest, datetime.now(UTC) - timedelta(days=3650)) + timedelta(seconds=1)
    message = Received(
        mid=0,
        qos=1,
        topic=f"{TOPIC_ROOT}/devices/{device_id}/events",
        payload=json.dumps({"events": events}).encode(),
        retained=False,
        received_at=received.timestamp(),
        connection=0,
    )
    return take_in(message, f"{TOPIC_ROOT}/devices/")


def store(
    db: psycopg.Connection[Any],
    device_id: str,
    events: list[dict[str, Any]],
    worker: str = "tests",
) -> Outcome:
    """Store `events` (as a device sends them) from registered `device_id` in one batch,
    committed (intake_of); counted under `worker`."""
    intake = intake_of(device_id, events)
    prepare_connection(db)
    with db.transaction():
        outcome = store_batch(db, DeviceDirectory(QUERIES["known_devices"]), [intake], worker)
    if outcome.dead_lettered:
        reasons = db.execute(
            "SELECT reason, detail FROM dead_letters ORDER BY id DESC LIMIT %s",
            (outcome.dead_lettered,),
        ).fetchall()
        raise AssertionError(f"the test's events must be valid: {reasons}")
    return outcome


def store_as_worker(
    db_url: str, worker: str, device_id: str, events: list[dict[str, Any]]
) -> Outcome:
    """`store` on a connection of its own, counted under `worker`: the counters of one
    worker are one row, which two batches would queue for anyway."""
    with psycopg.connect(db_url) as conn:
        return store(conn, device_id, events, worker)
