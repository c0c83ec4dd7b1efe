"""Publishes prepared payloads from a JSON-lines file, as devices would, and reports the
rate: `python -m devices.replay FILE`. Each line: {"device": ID, "payload": JSON} or
{"device": ID, "raw": "text sent as-is"}. Payloads go out unchecked (malformed ones
included, for tests of dead-lettering) and pipelined at QoS 1, unlike `DeviceClient`,
which validates and queues each event."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from schemas.publisher import Publisher
from schemas.settings import MqttEndpoint, get_settings

CONNECT_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 300.0


class _RawDevice:
    """One device's connection publishing bytes as they are, pipelined."""

    def __init__(self, device_id: str, endpoint: MqttEndpoint, topic_root: str) -> None:
        self.events_topic = f"{topic_root}/devices/{device_id}/events"
        self.status_topic = f"{topic_root}/devices/{device_id}/status"
        self._publisher = Publisher(endpoint, f"replay-{device_id}")

    def connect(self) -> None:
        self._publisher.connect(CONNECT_TIMEOUT_S)

    def publish(self, payload: bytes) -> None:
        self._publisher.send(self.events_topic, payload, FLUSH_TIMEOUT_S)

    def close(self, announce_offline: bool) -> None:
        self._publisher.flush(FLUSH_TIMEOUT_S)
        if announce_offline:
            self._publisher.publish(self.status_topic, b"offline", CONNECT_TIMEOUT_S, retain=True)
        self._publisher.stop()


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
