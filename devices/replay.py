"""Publishes prepared payloads from a JSON-lines file, as devices would, and reports the
rate: `python -m devices.replay FILE`. Each line: {"device": ID, "payload": JSON} or
{"device": ID, "raw": "text sent as-is"}."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from devices.client import DeviceClient
from schemas.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices.replay", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--no-status", action="store_true", help="do not publish online/offline status"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    clients: dict[str, DeviceClient] = {}
    messages = 0
    started = time.perf_counter()
    with args.file.open("rb") as lines:
        for line in lines:
            record = json.loads(line)
            device_id = record["device"]
            client = clients.get(device_id)
            if client is None:
                client = DeviceClient(device_id, settings.mqtt, settings.topic_root)
                client.connect()
                clients[device_id] = client
            if "raw" in record:
                client.publish_raw(record["raw"].encode("utf-8"))
            else:
                client.publish_raw(json.dumps(record["payload"], separators=(",", ":")).encode())
            messages += 1
    for client in clients.values():
        client.close(announce_offline=not args.no_status)
    elapsed = time.perf_counter() - started
    json.dump({"messages": messages, "seconds": round(elapsed, 3)}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
