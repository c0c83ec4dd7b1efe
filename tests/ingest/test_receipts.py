"""Receipts: after each commit the worker tells every device what became of each event of
the messages it just acknowledged: stored, duplicate, or dead-lettered with the reason."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.client import DeadLettered, DeviceClient
from schemas.receipts import RECEIPT_MAX_EVENTS, Receipt
from tests.conftest import Broker, publish_all, wait_until
from tests.factories import GTIN_COLA, count, event, seed_registry

DEVICE = "rvm-rcpt"


class ReceiptListener:
    """Subscribes to devices' receipts topics and merges what arrives, per device."""

    def __init__(self, broker: Broker, topic_root: str, devices: list[str]) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, list[Receipt]] = {d: [] for d in devices}
        self.prefix = f"{topic_root}/devices/"
        subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: subscribed.set()
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.subscribe([(f"{self.prefix}{d}/receipts", 1) for d in devices])
        assert subscribed.wait(10)
        self.client = client

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        device = message.topic[len(self.prefix) :].split("/")[0]
        with self.lock:
            self.messages[device].append(Receipt.model_validate_json(message.payload))

    def outcomes(self, device: str) -> dict[str, str]:
        """event_id → stored | duplicate | dead_lettered:{reason}, over every receipt
        (an id named twice keeps both, joined with '+')."""
        seen: dict[str, list[str]] = {}
        with self.lock:
            for receipt in self.messages[device]:
                for event_id in receipt.stored:
                    seen.setdefault(event_id, []).append("stored")
                for event_id in receipt.duplicate:
                    seen.setdefault(event_id, []).append("duplicate")
                for refused in receipt.dead_lettered:
                    seen.setdefault(refused.event_id, []).append(f"dead_lettered:{refused.reason}")
        return {event_id: "+".join(kinds) for event_id, kinds in seen.items()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(broker: Broker, topic_root: str) -> Any:
    receipts = ReceiptListener(broker, topic_root, [DEVICE, "rvm-unknown"])
    yield receipts
    receipts.close()


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def test_each_event_gets_one_outcome_in_its_devices_receipt(
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    listener: ReceiptListener,
) -> None:
    seed_registry(db, [DEVICE])
    make_worker()
    single, first, again, late = event(), event(), event(), event()
    skewed = {**event(), "ts": "1999-12-31T00:00:00Z"}
    batch = [first, skewed, {**first}, late]  # first twice in one message: once stored
    unknown = event()
    publish_all(
        broker,
        topic_root,
        [(DEVICE, compact(single)), (DEVICE, compact({"events": batch})),
         ("rvm-unknown", compact(unknown))],
    )  # fmt: skip
    wait_until(lambda: len(listener.outcomes(DEVICE)) == 4, 30, "receipts for 4 events")
    publish_all(broker, topic_root, [(DEVICE, compact({"events": [again, single]}))])
    wait_until(lambda: len(listener.outcomes(DEVICE)) == 5, 30, "the resend's receipt")
    assert listener.outcomes(DEVICE) == {
        single["event_id"]: "stored+duplicate",
        first["event_id"]: "stored+duplicate",
        skewed["event_id"]: "dead_lettered:clock_skew",
        late["event_id"]: "stored",
        again["event_id"]: "stored",
    }
    wait_until(lambda: listener.outcomes("rvm-unknown"), 30, "the unknown device's receipt")
    assert listener.outcomes("rvm-unknown") == {unknown["event_id"]: "dead_lettered:unknown_device"}
    # The receipt says what the database holds.
    assert count(db, "SELECT count(*) FROM events") == 4
    with listener.lock:
        [refused] = [d for r in listener.messages[DEVICE] for d in r.dead_lettered]
    assert "before 2000-01-01T00:00:00Z" in refused.detail


def test_a_big_commit_is_receipted_in_bounded_messages(
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    listener: ReceiptListener,
) -> None:
    seed_registry(db, [DEVICE])
    make_worker()
    events = [event() for _ in range(2500)]
    publish_all(
        broker,
        topic_root,
        [(DEVICE, compact({"events": events[i : i + 1000]})) for i in range(0, 2500, 1000)],
    )
    wait_until(lambda: len(listener.outcomes(DEVICE)) == 2500, 30, "2,500 receipted events")
    assert set(listener.outcomes(DEVICE).values()) == {"stored"}
    with listener.lock:
        sizes = [len(r.stored) for r in listener.messages[DEVICE]]
    assert max(sizes) <= RECEIPT_MAX_EVENTS


def test_receipts_off_sends_none(
    db: psycopg.Connection[Any],
    broker: Broker,
    topic_root: str,
    make_worker: Any,
    listener: ReceiptListener,
) -> None:
    seed_registry(db, [DEVICE])
    make_worker(LOOPTRACK_INGEST_RECEIPTS="false")
    publish_all(broker, topic_root, [(DEVICE, compact(event()))])
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 1, 30, "the event")
    marker = event()
    publish_all(broker, topic_root, [(DEVICE, compact(marker))])
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 2, 30, "the marker")
    assert listener.outcomes(DEVICE) == {}


def test_the_device_client_forgets_on_receipt_and_reports_dead_letters(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    """Without a worker nothing is receipted, so the client keeps every event however
    often the broker acknowledged it; a worker's receipts then empty the queue, and an
    event the ingest refused reaches the device program with its reason."""
    seed_registry(db, [DEVICE])
    refused: list[DeadLettered] = []
    client = DeviceClient(
        DEVICE,
        broker.url,
        topic_root=topic_root,
        client_id=f"c-{uuid.uuid4().hex[:8]}",
        receipt_timeout_s=1.0,
        on_dead_letter=refused.append,
    )
    with client:
        ids = [client.scan("returned", gtin=GTIN_COLA) for _ in range(20)]
        with pytest.raises(TimeoutError, match="20 events not receipted by the ingest"):
            client.flush(3)
        worker = make_worker()  # its group subscribes now: resends are what it gets
        client.flush(30)
        assert client.pending == 0
        assert count(db, "SELECT count(*) FROM events") == 20
        stored = {str(r[0]) for r in db.execute("SELECT event_id FROM events")}
        assert stored == set(ids)
    # An event only the ingest can refuse: the device is not registered.
    unregistered = DeviceClient(
        "rvm-unregistered",
        broker.url,
        topic_root=topic_root,
        client_id=f"c-{uuid.uuid4().hex[:8]}",
        on_dead_letter=refused.append,
    )
    with unregistered:
        lost_id = unregistered.scan("returned", gtin=GTIN_COLA)
        unregistered.flush(30)
        assert unregistered.pending == 0
    assert [(r.event_id, r.reason) for r in refused] == [(lost_id, "unknown_device")]
    worker.assert_running()
