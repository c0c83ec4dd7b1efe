"""Acceptance: devices whose clocks are wrong. A clock behind is taken at its word (any
past time is valid, SPEC §5) and counted in the buckets of the time it claims; a clock more
than 5 minutes ahead has every event dead-lettered as clock_skew, naming the device; one
a little ahead is tolerated; the other devices are not disturbed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Broker, start_publisher, wait_until
from tests.factories import (
    GTIN_COLA,
    GTIN_CRATE,
    assert_stored_exactly,
    count,
    event,
    seed_registry,
    write_replay_file,
)

pytestmark = [pytest.mark.fault]

# device → how far its clock is off (its ts = true time + offset)
CLOCKS = {
    "rvm-ok": timedelta(0),
    "rvm-behind": -timedelta(hours=26),  # a day and more: lands in yesterday's rollups
    "rvm-ahead": timedelta(hours=1),  # beyond the 5 minutes allowed
    "rvm-drift": timedelta(minutes=4),  # ahead, but within the 5 minutes
}
PER_DEVICE = 600


def traffic(now: datetime) -> tuple[list[tuple[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Per device: 300 single-event messages, then 3 batches of 100, stamped by its clock."""
    sent: dict[str, list[dict[str, Any]]] = {}
    messages: list[tuple[str, Any]] = []
    for device, offset in CLOCKS.items():
        events = [
            event(
                ("sold", "returned")[i % 2],
                gtin=(GTIN_COLA, GTIN_CRATE)[i % 3 == 0],
                ts=now + offset - timedelta(seconds=PER_DEVICE - i),
                seq=i + 1,
            )
            for i in range(PER_DEVICE)
        ]
        sent[device] = events
        messages += [(device, e) for e in events[:300]]
        messages += [(device, {"events": events[i : i + 100]}) for i in range(300, 600, 100)]
    return messages, sent


def test_wrong_clocks(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    seed_registry(db, list(CLOCKS))
    worker = make_worker()
    messages, sent = traffic(datetime.now(UTC))
    publisher = start_publisher(
        write_replay_file(tmp_path / "events.jsonl", messages), db_url, broker, topic_root
    )
    assert publisher.wait(60) == 0
    total = len(CLOCKS) * PER_DEVICE
    wait_until(
        lambda: (
            count(db, "SELECT count(*) FROM events")
            + count(db, "SELECT count(*) FROM dead_letters")
            >= total
        ),
        60,
        "every event stored or dead-lettered",
    )
    worker.assert_running()

    accepted = [e for d in ("rvm-ok", "rvm-behind", "rvm-drift") for e in sent[d]]
    assert_stored_exactly(db, accepted)
    # Stored at the time the device claims, to the microsecond.
    stored_ts = dict(db.execute("SELECT event_id::text, ts FROM events").fetchall())
    assert all(stored_ts[e["event_id"]] == datetime.fromisoformat(e["ts"]) for e in accepted)
    behind_days = {
        r[0]
        for r in db.execute(
            "SELECT day FROM device_counts_daily WHERE device_id = 'rvm-behind'"
        ).fetchall()
    }
    assert behind_days == {datetime.fromisoformat(e["ts"]).date() for e in sent["rvm-behind"]}

    dead = db.execute("SELECT device_id, reason, detail, payload FROM dead_letters").fetchall()
    assert len(dead) == PER_DEVICE
    assert {(d[0], d[1]) for d in dead} == {("rvm-ahead", "clock_skew")}
    assert all("ahead" in d[2] or "clock" in d[2] for d in dead), dead[0][2]
    # Each refused event is kept whole, so nothing is lost once the clock is fixed.
    assert {json.loads(d[3])["event_id"] for d in dead} == {
        e["event_id"] for e in sent["rvm-ahead"]
    }
