"""Publishes prepared payloads from a JSON-lines file, as devices would, and reports the
rate: `python -m devices.replay FILE`. Each line: {"device": ID, "payload": JSON} or
{"device": ID, "raw": "text sent as-is"}. Payloads go out unchecked (malformed ones
included, for tests of dead-lettering) and pipelined at QoS 1, unlike `DeviceClient`,
which validates and queues each event."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas.mqtt_connection import configure_client
from schemas.settings import MqttEndpoint, get_settings

# Unacknowledged QoS 1 publishes in flight per device connection.
MAX_INFLIGHT = 1000
# Messages handed to paho and not yet acknowledged, per device connection. paho keys them
# by packet id, which wraps at 65,535: a message queued beyond that would silently replace
# an earlier one with the same id (and it would never be sent). Found by a 120,000-message
# flood that stalled at 66,114.
MAX_OUTSTANDING = 20_000
CONNECT_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 300.0


class _RawDevice:
    """One device's connection publishing bytes as they are."""

    def __init__(self, device_id: str, endpoint: MqttEndpoint, topic_root: str) -> None:
        self.events_topic = f"{topic_root}/devices/{device_id}/events"
        self.status_topic = f"{topic_root}/devices/{device_id}/status"
        self._endpoint = endpoint
        self._connected = threading.Event()
        self._unacked = 0
        self._cv = threading.Condition()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"replay-{device_id}", protocol=mqtt.MQTTv5
        )
        configure_client(client, endpoint)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self._client = client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if not reason_code.is_failure:
            self._connected.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, _rc: Any, _p: Any) -> None:
        with self._cv:
            self._unacked -= 1
            self._cv.notify_all()

    def connect(self) -> None:
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            raise TimeoutError(f"no CONNACK from {self._endpoint.host}:{self._endpoint.port}")

    def publish(self, payload: bytes) -> None:
        with self._cv:
            if not self._cv.wait_for(lambda: self._unacked < MAX_OUTSTANDING, FLUSH_TIMEOUT_S):
                raise TimeoutError(f"{self._unacked} messages not acknowledged by the broker")
            self._unacked += 1
        self._client.publish(self.events_topic, payload, qos=1)

    def close(self, announce_offline: bool) -> None:
        with self._cv:
            if not self._cv.wait_for(lambda: self._unacked <= 0, FLUSH_TIMEOUT_S):
                raise TimeoutError(f"{self._unacked} messages not acknowledged by the broker")
        if announce_offline:
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
            info.wait_for_publish(CONNECT_TIMEOUT_S)
        self._client.disconnect()
        self._client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices.replay", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--no-status", action="store_true", help="do not publish online/offline status"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    devices: dict[str, _RawDevice] = {}
    messages = 0
    started = time.perf_counter()
    with args.file.open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            device_id = record["device"]
            device = devices.get(device_id)
            if device is None:
                device = _RawDevice(device_id, settings.mqtt, settings.topic_root)
                device.connect()
                devices[device_id] = device
            if "raw" in record:
                device.publish(record["raw"].encode("utf-8"))
            else:
                device.publish(json.dumps(record["payload"], separators=(",", ":")).encode())
            messages += 1
    for device in devices.values():
        device.close(announce_offline=not args.no_status)
    elapsed = time.perf_counter() - started
    json.dump({"messages": messages, "seconds": round(elapsed, 3)}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
