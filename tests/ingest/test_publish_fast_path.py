"""Event messages are read straight from the wire (ingest.mqtt_client): whatever MQTT 5
properties a device's client adds, and at whatever QoS it publishes, the payload stored
is exactly the one sent."""

from __future__ import annotations

import json
import time
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt_client import BurstReadingClient, _varint
from tests.conftest import Broker, wait_until
from tests.factories import count, event, seed_registry

DEVICE = "rvm-props"


def _publish(broker: Broker, topic: str, payloads: list[tuple[bytes, int, Properties]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for payload, qos, properties in payloads:
            client.publish(topic, payload, qos=qos, properties=properties).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _properties(**values: Any) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(properties, name, value)
    return properties


def test_payloads_are_stored_whatever_properties_and_qos_they_came_with(
    db: psycopg.Connection[Any], broker: Broker, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, [DEVICE])
    sent = [
        (event(qty=1), 1, _properties()),
        # A property block long enough that its length takes two bytes.
        (event(qty=2), 1, _properties(UserProperty=[("firmware", "x" * 200)])),
        (event(qty=3), 1, _properties(ContentType="application/json", MessageExpiryInterval=60)),
        (event(qty=4), 0, _properties(UserProperty=[("k", "v")])),  # QoS 0: paho's own path
    ]
    worker = make_worker()
    try:
        _publish(
            broker,
            f"{topic_root}/devices/{DEVICE}/events",
            [(json.dumps(e).encode(), qos, props) for e, qos, props in sent],
        )
        wait_until(lambda: count(db, "SELECT count(*) FROM events") == 4, 30, "four events")
    finally:
        assert worker.terminate() == 0
    stored = dict(db.execute("SELECT event_id::text, qty FROM events").fetchall())
    assert stored == {e["event_id"]: e["qty"] for e, _, _ in sent}
    assert count(db, "SELECT count(*) FROM dead_letters") == 0


@pytest.mark.parametrize(
    ("data", "value", "end"),
    [
        (b"\x00", 0, 1),
        (b"\x7f", 127, 1),
        (b"\x80\x01", 128, 2),
        (b"\xff\xff\xff\x7f", 268_435_455, 4),
        (b"\x80", None, 1),  # runs past the data
        (b"\x80\x80\x80\x80\x01", None, 4),  # over four bytes
    ],
)
def test_variable_byte_integers_decode_as_mqtt_5_defines_them(
    data: bytes, value: int | None, end: int
) -> None:
    assert _varint(data, 0) == (value, end)


def test_messages_over_the_in_flight_limit_wait_their_turn_and_all_go_out(broker: Broker) -> None:
    """The worker's own publishes (receipts): paho queues those over the in-flight limit
    and sends each when an earlier one is acknowledged; BurstReadingClient only skips
    that walk while nothing can be queued."""
    got: list[bytes] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener.on_message = lambda _c, _u, message: got.append(message.payload)
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    sender = BurstReadingClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.max_inflight_messages_set(2)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    try:
        listener.subscribe("fast-path/receipts", qos=1)
        time.sleep(0.5)
        infos = [sender.publish("fast-path/receipts", b"%d" % i, qos=1) for i in range(50)]
        wait_until(lambda: all(i.is_published() for i in infos), 10, "every acknowledgement")
        wait_until(lambda: len(got) == 50, 10, "every message")
    finally:
        for client in (sender, listener):
            client.disconnect()
            client.loop_stop()
    assert sorted(got, key=int) == [b"%d" % i for i in range(50)]


def _session(broker: Broker, client_id: str, got: list[int]) -> BurstReadingClient:
    """A persistent MQTT 5 session taking `fast-path/acks` at QoS 1 with manual acks, as
    the worker's; each payload (a number) is appended to `got`."""
    client = BurstReadingClient(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.on_publish_received = lambda _topic, mid, _retain, payload: got.append(
        (int(payload), mid)  # type: ignore[arg-type]
    )
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 300
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
    client.loop_start()
    return client


@pytest.mark.parametrize("acked", [60, 25])
def test_messages_acknowledged_in_one_write_are_never_redelivered(
    broker: Broker, acked: int
) -> None:
    """The worker acknowledges a batch's messages with one write of their PUBACKs
    (BurstReadingClient.ack_many): the broker takes each as acknowledged, and redelivers,
    to the same session, exactly the ones left unacknowledged."""
    client_id = f"fast-path-acks-{acked}"
    received: list[Any] = []
    first = _session(broker, client_id, received)
    first.subscribe("fast-path/acks", qos=1)
    time.sleep(0.5)
    _publish(broker, "fast-path/acks", [(b"%d" % i, 1, _properties()) for i in range(60)])
    wait_until(lambda: len(received) == 60, 10, "every message")
    first.ack_many(mid for _, mid in received[:acked])
    time.sleep(0.5)  # the PUBACKs out before the connection closes
    first.disconnect()
    first.loop_stop()

    redelivered: list[Any] = []
    second = _session(broker, client_id, redelivered)
    try:
        if acked < 60:
            wait_until(lambda: len(redelivered) == 60 - acked, 10, "the unacknowledged ones")
        time.sleep(1.0)  # anything more the broker would send
    finally:
        second.ack_many(mid for _, mid in redelivered)
        time.sleep(0.2)
        second.disconnect()
        second.loop_stop()
    assert [n for n, _ in received] == list(range(60))
    assert sorted(n for n, _ in redelivered) == list(range(acked, 60))
