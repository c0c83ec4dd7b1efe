"""Acceptance (receipts): with DeviceClient devices scanning throughout, a broker restart,
a broker SIGKILL, a worker SIGKILL and two minutes without receipts each end with every
event stored exactly once. The guarantee runs from the device's outbox to the committed
row, whatever the broker lost or kept."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devices.client import DeviceClient
from tests.conftest import Broker, wait_until
from tests.factories import GTIN_COLA, GTIN_CRATE, assert_stored_exactly, count, seed_registry

pytestmark = [pytest.mark.slow, pytest.mark.fault]

DEVICES = ["rvm-1", "rvm-2", "sorter-1"]
# Events per second across the fleet while a fault happens.
SCAN_RATE = 300
# Short, so a test sees a few resends rather than waiting out the default 30 s.
RECEIPT_TIMEOUT_S = 3.0
# How long one device gets no receipts in the unreachable-receipts test (s).
RECEIPTS_CUT_S = float(os.environ.get("LOOPTRACK_TEST_RECEIPTS_CUT_S", "120"))


class Fleet:
    """DeviceClients with queue files, scanning at SCAN_RATE from a thread of their own
    until `stop_scanning`; `sent` is every event recorded."""

    def __init__(self, broker: Broker, topic_root: str, tmp_path: Path) -> None:
        self.clients = [
            DeviceClient(
                device,
                broker.url,
                topic_root=topic_root,
                queue_path=tmp_path / f"{device}.sqlite",
                durable=False,
                batch_size=50,
                batch_interval_s=0.05,
                client_id=f"{device}-{uuid.uuid4().hex[:6]}",
                receipt_timeout_s=RECEIPT_TIMEOUT_S,
            )
            for device in DEVICES
        ]
        self.sent: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)

    def start(self) -> Fleet:
        for client in self.clients:
            client.start()
        for client in self.clients:
            assert client.wait_connected(10)
        self._thread.start()
        return self

    def _scan(self) -> None:
        started = time.monotonic()
        for n in itertools.count():
            if self._stop.is_set():
                return
            client = self.clients[n % len(self.clients)]
            serial = {"serial": f"S{n}"} if n % 5 == 0 else {}
            kind = ("sold", "returned")[n % 2]
            gtin = GTIN_CRATE if serial else GTIN_COLA
            self.sent.append({"event_id": client.scan(kind, gtin=gtin, **serial)})
            # Paced, so the fleet scans on through the fault at a device's speed.
            delay = started + (n + 1) / SCAN_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop_scanning(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def drain(self, timeout_s: float) -> None:
        """Stop scanning, then wait until every event has its receipt."""
        self.stop_scanning()
        deadline = time.monotonic() + timeout_s
        for client in self.clients:
            client.flush(max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.stop_scanning()
        for client in self.clients:
            client.close(timeout_s=1)


@pytest.fixture
def own_broker(tmp_path: Path) -> Any:
    """A broker of this test's own (restarting the session's would disturb other tests)."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def start_fleet(tmp_path: Path, topic_root: str) -> Any:
    """Starts this test's Fleet on a broker; every fleet is closed at the end."""
    started: list[Fleet] = []

    def start(broker: Broker) -> Fleet:
        started.append(Fleet(broker, topic_root, tmp_path).start())
        return started[-1]

    yield start
    for fleet in started:
        fleet.close()


def drain_and_assert_stored_once(db: psycopg.Connection[Any], fleet: Fleet, worker: Any) -> None:
    """Every event the fleet scanned gets its receipt, and is stored exactly once."""
    fleet.drain(120)
    worker.assert_running()
    assert_stored_exactly(db, fleet.sent)


def stored(db: psycopg.Connection[Any]) -> int:
    return count(db, "SELECT count(*) FROM events")


def test_broker_restart_with_the_worker_on_the_shared_subscription_loses_nothing(
    db: psycopg.Connection[Any], own_broker: Broker, make_worker: Any, start_fleet: Any
) -> None:
    """Mosquitto restores the worker's session but not its shared subscription: until the
    worker subscribes again, what devices publish is acknowledged and goes nowhere."""
    seed_registry(db, DEVICES)
    worker = make_worker(LOOPTRACK_MQTT_URL=own_broker.url)
    fleet = start_fleet(own_broker)
    wait_until(lambda: stored(db) >= 600, 60, "the first events")
    own_broker.stop()
    time.sleep(1)
    own_broker.start()
    wait_until(lambda: worker.log().count("subscribed group=") >= 2, 60, "resubscription")
    time.sleep(2)  # scanning on, after the worker is back
    drain_and_assert_stored_once(db, fleet, worker)


def test_broker_sigkill_between_snapshots_loses_nothing(
    db: psycopg.Connection[Any], own_broker: Broker, make_worker: Any, start_fleet: Any
) -> None:
    """Persistence is a snapshot every autosave_interval (10 s): what the broker
    acknowledged after it, and had not delivered, dies with the broker."""
    seed_registry(db, DEVICES)
    worker = make_worker(LOOPTRACK_MQTT_URL=own_broker.url)
    assert worker.process is not None
    fleet = start_fleet(own_broker)
    wait_until(lambda: stored(db) >= 600, 60, "the first events")
    # The worker falls behind (frozen): the broker queues what the devices publish.
    worker.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3)
        assert own_broker.process is not None
        own_broker.process.kill()
        own_broker.process.wait(10)
    finally:
        worker.process.send_signal(signal.SIGCONT)
    time.sleep(1)
    own_broker.start()
    time.sleep(3)
    drain_and_assert_stored_once(db, fleet, worker)


def test_worker_sigkill_while_receipts_are_in_flight_loses_and_doubles_nothing(
    db: psycopg.Connection[Any], broker: Broker, make_worker: Any, start_fleet: Any
) -> None:
    """Killed between its commits and their receipts, the worker leaves devices to resend
    events already stored: each is stored once, and receipted as a duplicate."""
    seed_registry(db, DEVICES)
    worker = make_worker()
    fleet = start_fleet(broker)
    for round_ in range(3):
        wait_until(
            lambda round_=round_: stored(db) >= 600 * (round_ + 1), 60, "events between kills"
        )
        worker.kill()
        worker = make_worker()
    time.sleep(1)
    drain_and_assert_stored_once(db, fleet, worker)


def test_two_minutes_without_receipts_resends_and_stores_each_event_once(
    db: psycopg.Connection[Any],
    topic_root: str,
    make_worker: Any,
    start_fleet: Any,
    tmp_path: Path,
) -> None:
    """One device may not read its receipts (an ACL without the receipts line) for
    RECEIPTS_CUT_S: it keeps its events and sends them again with back-off; once it may
    read again, the receipts of the resends empty its queue. The others go on as usual."""
    acl = tmp_path / "acl"
    devices = f"{topic_root}/devices"
    readable = [f"topic read {devices}/{device}/receipts" for device in DEVICES[1:]]
    rules = [f"topic readwrite {devices}/+/events", f"topic readwrite {devices}/+/status",
             f"topic write {devices}/+/receipts"]  # fmt: skip
    acl.write_text("\n".join([*rules, *readable]) + "\n")
    broker = Broker(tmp_path / "acl-broker", extra_config=[f"acl_file {acl}"])
    broker.start()
    try:
        seed_registry(db, DEVICES)
        worker = make_worker(LOOPTRACK_MQTT_URL=broker.url)
        fleet = start_fleet(broker)
        blind = fleet.clients[0]
        cut_until = time.monotonic() + RECEIPTS_CUT_S
        time.sleep(min(10.0, RECEIPTS_CUT_S / 2))
        fleet.stop_scanning()
        for client in fleet.clients[1:]:
            client.flush(30)
        wait_until(lambda: stored(db) == len(fleet.sent), 30, "every event stored once")
        time.sleep(max(0.0, cut_until - time.monotonic()))
        assert blind.pending > 0  # stored long ago, but never receipted
        duplicates = count(db, "SELECT coalesce(sum(duplicates), 0) FROM ingest_counters")
        assert duplicates > 0, "the blind device never sent its events again"
        acl.write_text("\n".join([*rules, f"topic read {devices}/+/receipts"]) + "\n")
        broker.reload()
        # The blind device's longest back-off is 8 * RECEIPT_TIMEOUT_S; drain waits longer.
        drain_and_assert_stored_once(db, fleet, worker)
    finally:
        broker.stop()
