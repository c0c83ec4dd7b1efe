"""Retained messages on event topics are ingested once, when published, and never again
from the broker's store when a worker (re)subscribes."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from ingest.batcher import Received
from ingest.intake import take_in
from schemas.dead_letters import DeadLetterReason
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import count, counters, event, seed_registry

DEVICE = "rvm-retains"


def publish_retained(broker: Broker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_retained_events_are_not_ingested_again_at_each_restart(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE, "rvm-garbage"])
    worker = make_worker()
    valid = event()
    publish_retained(broker, f"{topic_root}/devices/{DEVICE}/events", json.dumps(valid).encode())
    publish_retained(broker, f"{topic_root}/devices/rvm-garbage/events", b"\x00not json")
    try:
        wait_until(lambda: count(db, "SELECT count(*) FROM dead_letters") == 1, 30, "dead letter")
        wait_until(lambda: count(db, "SELECT count(*) FROM events") == 1, 30, "the valid event")
        before = counters(db)
        assert before == (2, 1, 0, 1)  # received, stored, duplicates, dead-lettered
        for restart in range(2):
            assert worker.terminate() == 0
            worker = make_worker()
            # A live event after the restart: once it is stored, anything the broker
            # replayed on subscribing was taken in before it.
            marker = event()
            publish_all(broker, topic_root, [(DEVICE, json.dumps(marker).encode())])
            wait_until(
                lambda marker=marker: count(
                    db, "SELECT count(*) FROM events WHERE event_id = %s", marker["event_id"]
                ),
                30,
                f"the live event after restart {restart + 1}",
            )
        assert count(db, "SELECT count(*) FROM events") == 3  # the retained one and 2 markers
        [(reason,)] = db.execute("SELECT reason FROM dead_letters").fetchall()
        assert reason == "invalid_json"
        received, stored, duplicates, dead = counters(db)
        assert (received, stored, duplicates, dead) == (4, 3, 0, 1)
    finally:
        # An empty retained message clears the broker's copy (the broker is the session's).
        for device in (DEVICE, "rvm-garbage"):
            publish_retained(broker, f"{topic_root}/devices/{device}/events", b"")


def test_a_retained_copy_replayed_anyway_is_dead_lettered_as_retained() -> None:
    """A broker that ignores retain handling replays the stored copy flagged retained: that
    is not a new publication, so it is dead-lettered rather than counted again."""
    message = Received(
        mid=1,
        qos=1,
        topic=f"root/devices/{DEVICE}/events",
        payload=json.dumps(event()).encode(),
        retained=True,
        received_at=time.time(),
        connection=1,
    )
    intake = take_in(message, "root/devices/")
    assert intake.parsed is None
    assert intake.failure is not None
    assert intake.failure[0] is DeadLetterReason.RETAINED
    status = replace(message, topic=f"root/devices/{DEVICE}/status", payload=b"online")
    assert take_in(status, "root/devices/").online is True  # retained statuses are the norm
