"""Acceptance: every dead-letter reason of SPEC §5 comes from a real message through the
real worker, is stored with the raw payload and the reason, and a batch with one bad
event still stores the good ones."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Broker, publish_all, wait_until
from tests.factories import GTIN_COLA, assert_accounted, count, event, seed_registry

DEVICE = "rvm-dl"


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def bad_gtin() -> str:
    # GTIN_COLA with its check digit changed: still 13 digits, wrong check.
    return GTIN_COLA[:-1] + str((int(GTIN_COLA[-1]) + 1) % 10)


# reason → (device the message is published as, raw payload)
NAIVE_TS = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None).isoformat()


def cases() -> dict[str, tuple[str, bytes]]:
    """Made when a test runs, not at import: the clock_skew event is 10 minutes ahead of
    the clock then, and the suite may reach a test more than MAX_CLOCK_SKEW after import."""
    return {
        "invalid_json": (DEVICE, b'{"event_id": "not closed'),
        "too_large": (DEVICE, compact({"events": [event(attrs={"pad": "x" * 3000})] * 100})),
        "schema": (DEVICE, compact({**event(), "qty": 0})),
        "invalid_gtin": (DEVICE, compact(event(gtin=bad_gtin()))),
        "invalid_serial": (DEVICE, compact(event(serial="has space"))),
        "invalid_code": (
            DEVICE,
            compact(
                {k: v for k, v in event(code="https://x.example/no-gtin").items() if k != "gtin"}
            ),
        ),
        # A GRAI whose asset type ends in 9 where its check digit is 7.
        "invalid_grai": (
            DEVICE,
            compact(
                {**{k: v for k, v in event().items() if k != "gtin"}, "grai": "07038010000029C1"}
            ),
        ),
        "naive_timestamp": (DEVICE, compact({**event(), "ts": NAIVE_TS})),
        "clock_skew": (DEVICE, compact(event(ts=datetime.now(UTC) + timedelta(minutes=10)))),
        "unknown_device": ("rvm-not-registered", compact(event())),
        "device_mismatch": (DEVICE, compact(event(device_id="rvm-other"))),
    }


def test_each_reason_is_dead_lettered_with_its_payload(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE])
    worker = make_worker()
    messages = cases()
    publish_all(broker, topic_root, list(messages.values()))
    wait_until(
        lambda: count(db, "SELECT count(*) FROM dead_letters") >= len(messages), 30, "dead letters"
    )
    rows = db.execute(
        "SELECT reason, payload, topic, device_id, detail, batch_index, received_at,"
        " payload_size, payload_sha256 FROM dead_letters ORDER BY reason"
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(messages)
    for reason, payload, topic, device_id, detail, batch_index, received_at, *kept in rows:
        device, sent = messages[reason]
        assert topic == f"{topic_root}/devices/{device}/events"
        assert device_id == device
        assert detail, f"{reason} has no detail"
        assert batch_index is None
        assert abs(received_at - datetime.now(UTC)) < timedelta(minutes=1)
        if reason == "too_large":
            # Only the first 4 KiB, with the whole message's size and digest.
            assert bytes(payload) == sent[:4096]
            assert kept == [len(sent), hashlib.sha256(sent).digest()]
            continue
        if reason in ("invalid_json", "unknown_device"):
            assert bytes(payload) == sent  # the message exactly as received
        else:
            assert json.loads(payload) == json.loads(sent)  # the bad event, as sent
        assert kept == [len(payload), hashlib.sha256(payload).digest()]
    assert count(db, "SELECT count(*) FROM events") == 0
    assert count(db, "SELECT dead_lettered FROM ingest_counters") == len(messages)
    assert_accounted(db)
    worker.assert_running()


def test_an_oversized_message_of_an_unregistered_device_keeps_its_head_only(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    """Bounded whatever the reason: the worker files it as unknown_device (the topic's
    device comes first), and the dead letter still keeps 4 KiB, not 300 KB."""
    seed_registry(db, [DEVICE])
    make_worker()
    sent = cases()["too_large"][1]
    publish_all(broker, topic_root, [("rvm-not-registered", sent)])
    wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, 30, "dead letter")
    row = db.execute("SELECT reason, payload, payload_size, payload_sha256 FROM dead_letters")
    reason, payload, size, digest = row.fetchone() or (None, b"", 0, b"")
    assert reason == "unknown_device"
    assert (bytes(payload), size, bytes(digest)) == (
        sent[:4096],
        len(sent),
        hashlib.sha256(sent).digest(),
    )


def test_one_bad_event_in_a_batch_does_not_block_the_others(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE])
    make_worker()
    events = [event("returned") for _ in range(10)]
    events[4] = {**events[4], "gtin": bad_gtin()}
    events[7] = {**events[7], "ts": NAIVE_TS}
    publish_all(broker, topic_root, [(DEVICE, compact({"events": events}))])
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 8, 30, "8 good events")
    stored = {str(r[0]) for r in db.execute("SELECT event_id FROM events")}
    assert stored == {e["event_id"] for i, e in enumerate(events) if i not in (4, 7)}
    dead = db.execute(
        "SELECT batch_index, reason, payload FROM dead_letters ORDER BY batch_index"
    ).fetchall()
    assert [(i, r) for i, r, _ in dead] == [(4, "invalid_gtin"), (7, "naive_timestamp")]
    assert json.loads(dead[0][2])["event_id"] == events[4]["event_id"]
    assert json.loads(dead[1][2])["event_id"] == events[7]["event_id"]
    assert_accounted(db)


def test_status_topic_sets_online_and_last_seen(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE])
    make_worker()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"d-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    client.will_set(f"{topic_root}/devices/{DEVICE}/status", b"offline", qos=1, retain=True)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(f"{topic_root}/devices/{DEVICE}/status", b"online", qos=1, retain=True)
    wait_until(
        lambda: db.execute("SELECT online FROM device_state").fetchone() == (True,), 30, "online"
    )
    last_seen = db.execute("SELECT last_seen FROM device_state").fetchone()
    assert last_seen is not None and last_seen[0] is not None
    # Dropping the connection without DISCONNECT fires the Last Will: offline.
    client._sock_close()
    client.loop_stop()
    wait_until(
        lambda: db.execute("SELECT online FROM device_state").fetchone() == (False,), 90, "offline"
    )


def test_a_message_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    """Stands for any input validation lets through but PostgreSQL refuses: the stream
    must not stall on it, and nothing else in its batch, or its own payload, may be lost."""
    seed_registry(db, [DEVICE])
    refused = event("sold", qty=4242)
    db.execute("ALTER TABLE events ADD CONSTRAINT test_refuses_4242 CHECK (qty <> 4242)")
    make_worker()
    good = [event("sold") for _ in range(5)]
    batch_with_refused = [event("returned"), refused, event("returned")]
    messages = [(DEVICE, compact(e)) for e in good]
    messages.insert(2, (DEVICE, compact({"events": batch_with_refused})))
    publish_all(broker, topic_root, messages)
    wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") >= 1, 30, "dead letter")
    wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 7, 30, "the good events")
    stored = {str(r[0]) for r in db.execute("SELECT event_id FROM events")}
    assert stored == {e["event_id"] for e in [*good, batch_with_refused[0], batch_with_refused[2]]}
    [(reason, detail, index, payload)] = db.execute(
        "SELECT reason, detail, batch_index, payload FROM dead_letters"
    ).fetchall()
    # Only the refused event is dead-lettered, with its index, so a replay after the fix
    # stores it and nothing twice.
    assert (reason, index) == ("internal_error", 1)
    assert "the database refused it" in detail and "test_refuses_4242" in detail
    assert json.loads(payload) == refused
    assert_accounted(db)
    returned = "SELECT coalesce(sum(events), 0) FROM event_counts_15m WHERE type = 'returned'"
    assert count(db, returned) == 2
