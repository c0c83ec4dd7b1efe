"""Acceptance (issue 5): events a device scans while the broker is unreachable, across a
kill and restart of the device, or while its connection is cut mid-batch, all reach the
database exactly once and in seq order."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devices.client import DeviceClient, InvalidEvent, QueueFull
from tests.conftest import ROOT, Broker, wait_until
from tests.factories import GTIN_COLA, GTIN_CRATE, assert_stored_exactly, count, seed_registry
from tests.tcp_proxy import CuttableProxy

pytestmark = [pytest.mark.fault]

DEVICES = ["rvm-1", "rvm-2"]
PER_DEVICE = 2_500  # 5,000 events in all
# What the worker logs once its shared subscription is in place (again).
SUBSCRIBED = "subscribed group="
FIRST_TS = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def device_process(
    broker_url: str, topic_root: str, queue_dir: Path, count_per_device: int, then: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.devices.device_process",
            f"--broker={broker_url}",
            f"--topic-root={topic_root}",
            f"--queue-dir={queue_dir}",
            f"--devices={','.join(DEVICES)}",
            f"--count={count_per_device}",
            f"--first-ts={FIRST_TS.isoformat()}",
            f"--then={then}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], line: str, timeout_s: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = process.stdout.readline().strip()
        if got == line:
            return
        assert process.poll() is None, f"device process exited {process.returncode}"
    pytest.fail(f"device process did not print {line!r} within {timeout_s}s")


def assert_each_seq_once_in_order(db: psycopg.Connection[Any], per_device: int) -> None:
    """Every device's seqs 1..per_device stored exactly once, each with the ts it was
    scanned with, arriving in seq order, and no seq gap reported."""
    assert count(db, "SELECT count(*) FROM events") == per_device * len(DEVICES)
    for device in DEVICES:
        rows = db.execute(
            "SELECT seq, ts, received_at FROM events WHERE device_id = %s ORDER BY seq",
            (device,),
        ).fetchall()
        assert [r[0] for r in rows] == list(range(1, per_device + 1))
        assert all(ts == FIRST_TS + timedelta(seconds=seq - 1) for seq, ts, _ in rows)
        received = [r[2] for r in rows]
        assert received == sorted(received), f"{device}: events arrived out of seq order"
    assert count(db, "SELECT count(*) FROM seq_gaps") == 0


def test_scans_while_broker_is_down_survive_a_kill_and_arrive_once_in_order(
    db: psycopg.Connection[Any], tmp_path: Path, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, DEVICES)
    own = Broker(tmp_path / "broker")
    own.start()
    # The devices reach the broker through a proxy: Mosquitto does not restore shared
    # subscriptions from its persistence file, so a message published after a broker
    # restart and before the worker's reconnect would go nowhere. The proxy keeps the
    # devices out until the worker is back (see docs/mosquitto.md).
    proxy = CuttableProxy("127.0.0.1", own.port)
    via_proxy = f"mqtt://127.0.0.1:{proxy.port}"
    try:
        worker = make_worker(LOOPTRACK_MQTT_URL=own.url)
        own.stop()
        proxy.cut()

        first = device_process(via_proxy, topic_root, tmp_path / "queues", 2_000, "hang")
        wait_for_line(first, "scanned", 120)
        first.kill()  # SIGKILL: no chance to flush or close
        first.wait(10)
        first.stdout.close()  # type: ignore[union-attr]
        assert count(db, "SELECT count(*) FROM events") == 0

        # Restarted, the device scans on (its seqs continue), then the broker comes back.
        second = device_process(via_proxy, topic_root, tmp_path / "queues", 500, "drain")
        wait_for_line(second, "scanned", 120)
        own.start()
        wait_until(lambda: worker.log().count(SUBSCRIBED) == 2, 60, "worker subscribed again")
        proxy.restore()
        wait_for_line(second, "drained", 120)
        assert second.wait(30) == 0
        second.stdout.close()  # type: ignore[union-attr]

        wait_until(
            lambda: count(db, "SELECT count(*) FROM events") >= PER_DEVICE * len(DEVICES),
            60,
            "all events stored",
        )
        time.sleep(1)  # a late duplicate would show up now
        worker.assert_running()
        assert_each_seq_once_in_order(db, PER_DEVICE)
    finally:
        proxy.cut()
        own.stop()


def test_connection_cut_mid_batch_and_broker_restart_lose_and_double_nothing(
    db: psycopg.Connection[Any], tmp_path: Path, topic_root: str, make_worker: Any
) -> None:
    seed_registry(db, DEVICES)
    own = Broker(tmp_path / "broker")
    own.start()
    proxy = CuttableProxy("127.0.0.1", own.port)
    clients: list[DeviceClient] = []
    try:
        worker = make_worker(LOOPTRACK_MQTT_URL=own.url)
        clients = [
            DeviceClient(
                device,
                f"mqtt://127.0.0.1:{proxy.port}",
                topic_root=topic_root,
                queue_path=tmp_path / f"{device}.sqlite",
                batch_size=50,
                batch_interval_s=0.02,
            )
            for device in DEVICES
        ]
        for client in clients:
            client.start()
            assert client.wait_connected(10)

        def scan(n: int) -> None:
            for _ in range(n):
                for client in clients:
                    seq = client.last_seq + 1
                    client.scan(
                        "returned", gtin=GTIN_COLA, ts=FIRST_TS + timedelta(seconds=seq - 1)
                    )

        def stored() -> int:
            return count(db, "SELECT count(*) FROM events")

        scan(600)
        # Cut while batches are in flight: some reached the broker, their PUBACKs did not.
        wait_until(lambda: stored() > 0, 30, "first events stored")
        assert any(c.pending for c in clients), "the cut must fall mid-stream"
        proxy.cut()
        scan(700)  # scanned during the outage: queued on disk
        time.sleep(1.5)
        proxy.restore()
        scan(400)
        wait_until(lambda: stored() >= 1_700 * len(DEVICES), 60, "the events so far")
        # The broker itself stops (persisting its queues) and comes back on the same port.
        # The devices are held back until the worker has subscribed again (as in the test
        # above: Mosquitto forgets shared subscriptions across a restart).
        proxy.cut()
        own.stop()
        scan(400)
        own.start()
        wait_until(lambda: worker.log().count(SUBSCRIBED) == 2, 60, "worker subscribed again")
        proxy.restore()
        scan(400)  # 2,500 per device in all
        for client in clients:
            client.flush(timeout_s=120)
        wait_until(lambda: stored() >= PER_DEVICE * len(DEVICES), 60, "all events stored")
        time.sleep(1)
        worker.assert_running()
        assert_each_seq_once_in_order(db, PER_DEVICE)
    finally:
        for client in clients:
            client.close(timeout_s=1)
        proxy.cut()
        own.stop()


def test_a_day_offline_then_the_queue_flushes_into_the_right_buckets(
    db: psycopg.Connection[Any], broker: Broker, tmp_path: Path, topic_root: str, make_worker: Any
) -> None:
    """A busy RVM loses its network for a day (4,320 scans, one every 20 s) while another
    keeps sending; back online, the day arrives once, in order, counted in the hours it
    was scanned in, and the other machine was served all along."""
    seed_registry(db, DEVICES)
    make_worker()
    proxy = CuttableProxy("127.0.0.1", broker.port)
    offline_for_a_day, online = (
        DeviceClient(
            device,
            f"mqtt://127.0.0.1:{port}",
            topic_root=topic_root,
            queue_path=tmp_path / f"{device}.sqlite",
        )
        for device, port in zip(DEVICES, (proxy.port, broker.port), strict=True)
    )
    day_start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1, minutes=10)
    sent: list[dict[str, Any]] = []
    try:
        for client in (offline_for_a_day, online):
            client.start()
            assert client.wait_connected(10)
        proxy.cut()
        for i in range(4_320):
            kind, gtin = ("returned", GTIN_COLA) if i % 4 else ("sold", GTIN_CRATE)
            ts = day_start + timedelta(seconds=20 * i)
            sent.append({"event_id": offline_for_a_day.scan(kind, gtin=gtin, ts=ts)})
            if i % 10 == 0:
                sent.append({"event_id": online.scan("returned", gtin=GTIN_COLA)})
        online.flush(timeout_s=60)
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= 432, 30, "the online RVM")
        assert offline_for_a_day.pending == 4_320
        assert count(db, "SELECT count(*) FROM events WHERE device_id = %s", DEVICES[0]) == 0

        proxy.restore()
        offline_for_a_day.flush(timeout_s=120)
        wait_until(lambda: count(db, "SELECT count(*) FROM events") >= len(sent), 60, "the day")
        time.sleep(1)
        assert_stored_exactly(db, sent)
        rows = db.execute(
            "SELECT seq, ts, received_at FROM events WHERE device_id = %s ORDER BY seq",
            (DEVICES[0],),
        ).fetchall()
        assert [r[0] for r in rows] == list(range(1, 4_321))
        assert [r[1] for r in rows] == [day_start + timedelta(seconds=20 * i) for i in range(4_320)]
        assert [r[2] for r in rows] == sorted(r[2] for r in rows)
        hours = count(
            db,
            "SELECT count(DISTINCT hour) FROM return_counts_hourly WHERE hour < %s",
            datetime.now(UTC) - timedelta(minutes=70),
        )
        assert hours >= 23  # the day is spread over its hours, not piled into this one
        assert count(db, "SELECT count(*) FROM seq_gaps") == 0
    finally:
        for client in (offline_for_a_day, online):
            client.close(timeout_s=1)
        proxy.cut()


def test_a_full_queue_refuses_new_scans_and_keeps_the_queued_ones(tmp_path: Path) -> None:
    # No broker listens on this port: everything stays queued.
    client = DeviceClient(
        "rvm-1",
        "mqtt://127.0.0.1:9",
        queue_path=tmp_path / "outbox.sqlite",
        max_queue_bytes=256 * 1024,
    )
    client.start()
    try:
        attrs = {"note": "x" * 1000}
        with pytest.raises(QueueFull, match="is full"):
            for _ in range(10_000):
                client.scan("returned", gtin=GTIN_COLA, attrs=attrs)
        kept = client.pending
        assert 50 < kept < 256  # about 1 KiB each under a 256 KiB bound
        assert client.last_seq == kept  # the refused scan used no seq
        assert (tmp_path / "outbox.sqlite").stat().st_size <= 256 * 1024
    finally:
        client.close(timeout_s=0.1)
    # The queued events are still there for the next start.
    reopened = DeviceClient("rvm-1", "mqtt://127.0.0.1:9", queue_path=tmp_path / "outbox.sqlite")
    assert reopened.pending == kept
    assert reopened.last_seq == kept
    reopened.close()


def test_an_invalid_event_is_refused_before_it_is_queued(tmp_path: Path) -> None:
    client = DeviceClient("rvm-1", "mqtt://127.0.0.1:9", queue_path=tmp_path / "q.sqlite")
    with pytest.raises(InvalidEvent) as refused:
        client.scan("returned", gtin=GTIN_COLA[:-1] + str((int(GTIN_COLA[-1]) + 1) % 10))
    assert refused.value.reason == "invalid_gtin"
    assert "check digit" in refused.value.detail
    with pytest.raises(InvalidEvent, match=r"naive_timestamp|timezone"):
        client.scan("returned", gtin=GTIN_COLA, ts=datetime(2026, 1, 1))
    with pytest.raises(InvalidEvent, match="qty"):
        client.scan("returned", gtin=GTIN_COLA, serial="A1", qty=2)
    # Not JSON as the ingest reads it: refused here rather than spoiling a whole batch.
    with pytest.raises(InvalidEvent, match=r"NaN|Out of range") as not_json:
        client.scan("returned", gtin=GTIN_COLA, attrs={"weight_g": float("nan")})
    assert not_json.value.reason == "invalid_json"
    with pytest.raises(InvalidEvent, match="not JSON serializable"):
        client.scan("returned", gtin=GTIN_COLA, attrs={"at": datetime(2026, 1, 1, tzinfo=UTC)})
    # A crate's GRAI whose asset type 0703801000002 ends in 9, not its check digit 7.
    with pytest.raises(InvalidEvent) as bad_grai:
        client.scan("returned", grai="07038010000029C1")
    assert bad_grai.value.reason == "invalid_grai"
    assert client.pending == 0
    assert client.last_seq == 0
    assert client.scan("returned", gtin=GTIN_COLA)
    assert client.scan("returned", grai="07038010000027C1")
    assert client.last_seq == 2
    client.close()


def test_the_client_names_events_with_time_ordered_ids(tmp_path: Path) -> None:
    """Version 7 ids (RFC 9562): later scans sort after earlier ones, so the receiver's
    index of stored ids takes them at one end (schemas.events, event_id)."""
    client = DeviceClient("rvm-1", "mqtt://127.0.0.1:9", queue_path=tmp_path / "q.sqlite")
    try:
        ids = []
        for _ in range(3):
            ids.append(uuid.UUID(client.scan("returned", gtin=GTIN_COLA)))
            time.sleep(0.002)  # the ids' clock counts milliseconds
    finally:
        client.close(timeout_s=0.1)
    assert [i.version for i in ids] == [7, 7, 7]
    assert ids == sorted(ids)
    assert abs((ids[0].int >> 80) - time.time() * 1000) < 60_000  # its time, in ms
