"""Fuzzing over the wire: random bytes, oversized and deeply nested JSON, mangled events and
garbage statuses, published to the running worker among valid events. Every event comes
out stored or dead-lettered (exactly one of the two), the valid ones are all stored, the
worker keeps running and the accounting identity holds."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker, publish_all, wait_until
from tests.factories import assert_accounted, assert_stored_exactly, count, event, seed_registry

pytestmark = [pytest.mark.fault]

DEVICE = "rvm-fuzz"
SEED = 20261123
# What a mangled field may become.
ODD_VALUES: list[Any] = [
    None, 0, -1, 10**30, 1.5, "", "x" * 5000, "\u0000", "\ud83d\ude00", [], {}, [[[]]],
    {"a": {"b": None}}, True, "2026-13-45T25:61:00Z", "not-a-uuid", "0" * 14, "+1",
]  # fmt: skip


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def mangled(rng: random.Random) -> dict[str, Any]:
    """A valid event with one field replaced, removed or added."""
    e = event("returned", serial=f"S{rng.randrange(10**6)}")
    field = rng.choice([*e, "qty", "seq", "attrs", "extra"])
    if rng.random() < 0.2 and field in e:
        del e[field]
    else:
        e[field] = rng.choice(ODD_VALUES)
    return e


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def test_garbage_over_mqtt_never_stops_or_corrupts_ingest(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE])
    worker = make_worker()
    rng = random.Random(SEED)
    valid: list[dict[str, Any]] = []
    unreadable: list[bytes] = []  # whole messages that cannot be read: one dead letter each
    mangled_events: list[dict[str, Any]] = []  # inside batches: stored or a dead letter each
    messages: list[tuple[str, bytes]] = []
    for _ in range(300):
        kind = rng.choice(["valid", "bytes", "utf8", "nested", "big", "batch", "scalar"])
        if kind == "valid":
            valid.append(event("sold"))
            messages.append((DEVICE, compact(valid[-1])))
        elif kind == "batch":
            good = [event("returned") for _ in range(rng.randrange(1, 20))]
            bad = [mangled(rng) for _ in range(rng.randrange(1, 5))]
            batch = good + bad
            rng.shuffle(batch)
            valid += good
            mangled_events += bad
            messages.append((DEVICE, compact({"events": batch})))
        else:
            payload = {
                "bytes": lambda: random_bytes(rng),
                "utf8": lambda: b'{"event_id": "\xff\xfe", "type": "sold"}',
                "nested": lambda: rng.choice([nested(100_000), b'{"events": ' + nested(5_000)]),
                "big": lambda: compact({"events": [event(attrs={"pad": "x" * 300_000})]}),
                "scalar": lambda: rng.choice([b"null", b"42", b'"text"', b"[]", b"{}", b"true"]),
            }[kind]()
            unreadable.append(payload)
            messages.append((DEVICE, payload))
    # Garbage statuses and a topic without a device id.
    status = [(f"{DEVICE}/status", random_bytes(rng)) for _ in range(20)]
    publish_all(broker, topic_root, messages)
    publish_raw(broker, [(f"{topic_root}/devices/{d}", p) for d, p in status])
    publish_raw(broker, [(f"{topic_root}/devices//events", compact(event()))])
    unreadable.append(b"no device id")
    # One packet over the broker's 1 MiB limit: Mosquitto drops the sender, the worker
    # never sees it.
    assert not publish_raw(broker, [(f"{topic_root}/devices/{DEVICE}/events", b"x" * 2**21)])
    # Still alive and still storing.
    last = event("sold")
    valid.append(last)
    publish_all(broker, topic_root, [(DEVICE, compact(last))])

    expected = len(valid) + len(unreadable) + len(mangled_events)
    wait_until(
        lambda: (
            count(db, "SELECT count(*) FROM events")
            + count(db, "SELECT count(*) FROM dead_letters")
            >= expected
        ),
        120,
        f"{expected} outcomes",
    )
    worker.assert_running()
    stored_ids = {str(r[0]) for r in db.execute("SELECT event_id FROM events")}
    assert {e["event_id"] for e in valid} <= stored_ids
    # A mangled event is stored only if it still is a valid event.
    extra = [e for e in mangled_events if str(e.get("event_id")) in stored_ids]
    assert count(db, "SELECT count(*) FROM events") == len(valid) + len(extra)
    assert count(db, "SELECT count(*) FROM dead_letters") == (
        len(unreadable) + len(mangled_events) - len(extra)
    )
    reasons = dict(db.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1").fetchall())
    assert "internal_error" not in reasons, reasons  # a parser crash would show here
    assert reasons.get("too_large", 0) == sum(len(p) > 256 * 1024 for p in unreadable)
    assert_stored_exactly(db, valid + extra)
    assert_accounted(db)
    # The status garbage changed nothing; the worker logged it and went on.
    assert count(db, "SELECT count(*) FROM device_state WHERE online IS NOT NULL") == 0
    assert "ignoring status" in worker.log()


def publish_raw(broker: Broker, messages: list[tuple[str, bytes]]) -> bool:
    """Publish to full topics at QoS 1; True when the broker acknowledged every message."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"fuzz-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                return False
        return all(info.is_published() for info in infos)
    finally:
        client.disconnect()
        client.loop_stop()
