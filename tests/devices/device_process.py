"""A device process for store-and-forward tests: scans events through `DeviceClient`
with an on-disk queue, then either hangs (to be killed) or drains its queue and exits.

    python -m tests.devices.device_process --broker URL --topic-root R --queue-dir D \
        --devices rvm-1,rvm-2 --first-ts 2026-01-01T00:00:00+00:00 --count 2000 --then hang
"""

from __future__ import annotations

import argparse
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

from devices.client import DeviceClient
from tests.factories import GTIN_COLA


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic-root", required=True)
    parser.add_argument("--queue-dir", type=Path, required=True)
    parser.add_argument("--devices", required=True)
    parser.add_argument("--count", type=int, required=True, help="events per device")
    parser.add_argument("--first-ts", type=datetime.fromisoformat, required=True)
    parser.add_argument("--then", choices=["hang", "drain"], required=True)
    args = parser.parse_args()
    clients = [
        DeviceClient(
            device,
            args.broker,
            topic_root=args.topic_root,
            queue_path=args.queue_dir / f"{device}.sqlite",
            batch_size=100,
            batch_interval_s=0.05,
        )
        for device in args.devices.split(",")
    ]
    for client in clients:
        client.start()
    for client in clients:
        # Event seq n has ts first_ts + (n - 1) s, so order can be checked.
        done = client.last_seq
        for i in range(args.count):
            client.scan("returned", gtin=GTIN_COLA, ts=args.first_ts + timedelta(seconds=done + i))
    print("scanned", flush=True)
    if args.then == "hang":
        threading.Event().wait()
    for client in clients:
        client.flush(timeout_s=120)
        client.close()
    print("drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
