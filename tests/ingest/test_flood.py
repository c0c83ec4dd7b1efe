"""A flood from one device (far more than the worker takes at once) keeps the worker's
memory bounded, and another device's events are still stored while the flood goes on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Broker, publish_all, start_publisher, wait_until
from tests.factories import (
    assert_stored_exactly,
    count,
    event,
    seed_registry,
    write_replay_file,
)

pytestmark = [pytest.mark.slow, pytest.mark.fault]

FLOODER, QUIET = "rvm-flood", "rvm-quiet"
# Single-event messages, as fast as the broker takes them; more than MQTT's 65,535 packet
# ids, which the publisher must not have outstanding at once (devices/replay.py).
FLOOD = 70_000
# The worker holds at most two batches of messages (Receive Maximum): its resident memory
# must stay near its idle size whatever the backlog on the broker.
MAX_GROWTH_MB = 80


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_flooding_device_neither_bloats_the_worker_nor_starves_the_others(
    db: psycopg.Connection[Any],
    db_url: str,
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    tmp_path: Path,
) -> None:
    seed_registry(db, [FLOODER, QUIET])
    worker = make_worker()
    assert worker.process is not None
    idle = rss_mb(worker.process.pid)
    flood = [(FLOODER, event("returned")) for _ in range(FLOOD)]
    publisher = start_publisher(
        write_replay_file(tmp_path / "flood.jsonl", flood), db_url, broker, topic_root
    )
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 5_000, 60, "the flood")

    quiet = [event("returned") for _ in range(20)]
    sent_at = time.monotonic()
    publish_all(broker, topic_root, [(QUIET, json.dumps(e).encode()) for e in quiet])
    peak = idle
    while count(db, "SELECT count(*) FROM events WHERE device_id = %s", QUIET) < len(quiet):
        peak = max(peak, rss_mb(worker.process.pid))
        assert time.monotonic() - sent_at < 60, "the quiet device's events were not stored"
        time.sleep(0.1)
    quiet_done = count(db, "SELECT count(*) FROM events WHERE device_id = %s", FLOODER)
    assert quiet_done < FLOOD, "the quiet device must be served while the flood goes on"

    assert publisher.wait(300) == 0
    while count(db, "SELECT count(*) FROM events") < FLOOD + len(quiet):
        peak = max(peak, rss_mb(worker.process.pid))
        assert time.monotonic() - sent_at < 300, "the flood was not stored"
        time.sleep(0.2)
    print(
        f"worker RSS idle {idle:.0f} MB, peak {peak:.0f} MB; quiet device served after "
        f"{quiet_done} of {FLOOD} flood events"
    )
    assert peak - idle < MAX_GROWTH_MB
    worker.assert_running()
    time.sleep(1)  # a double would arrive now
    assert_stored_exactly(db, [e for _, e in flood] + quiet)
