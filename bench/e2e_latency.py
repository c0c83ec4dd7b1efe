"""Publish → visible in `/v1/stats` latency at a steady event rate (SPEC §10: p99 < 1 s at
1,000 events/s).

    python bench/e2e_latency.py [--rate 1000] [--seconds 60] [--devices 20]
                                [--batch-interval 0.5] [--compare 0.1,1.0]
                                [--compare-seconds 30] [--poll-ms 20]

Starts its own Mosquitto (the project's config), its own database on the local PostgreSQL,
the ingest worker and the API as real subprocesses, and a fleet of simulated RVMs
(`devices.DeviceClient`, in-memory queue) in a separate process. The fleet produces a
steady `--rate` events/s (sold/returned/rejected, round robin over the devices). Every
100 ms the first device also scans a *probe*: a `sold` of a product whose packaging type
nothing else uses, stamped with the time of `scan()`. Meanwhile this process polls
`GET /v1/stats/return-rates?bucket=total&packaging_type=probe` over HTTP (keep-alive,
operator key) every `--poll-ms`; the poll that first shows the k-th probe counted marks it
visible. Probes of one device are sent, acknowledged and committed in order, so the k-th
count is the k-th probe. A plain MQTT subscriber on the probe device's topic also notes
when each probe reached the broker, which splits the latency into the device's batching
(`scan → broker`) and ingest + query (`broker → visible`).

Latency is counted from `scan()`: the moment the device hands the event over. It includes
the client's batching (up to `batch_interval_s`), the worker's (FLUSH_INTERVAL_S in
ingest/batcher.py), the commit and the query; it is an upper bound by at most one poll gap
(printed). The first run uses `--batch-interval` (the client's default) for `--seconds`;
each `--compare` interval then runs for `--compare-seconds` (empty to skip).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devices.client import DeviceClient  # noqa: E402
from ingest.batcher import FLUSH_INTERVAL_S  # noqa: E402
from looptrack.local_services import LocalMosquitto, free_port, port_open  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402
from schemas.gtin import gtin_check_digit  # noqa: E402
from schemas.migrations import migrate  # noqa: E402
from schemas.settings import parse_mqtt_url  # noqa: E402

PG_SERVER = os.environ.get("LOOPTRACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ZONE = "UTC"  # deployment zone; the stats window is whole days in it (day rollups)
# Background products (the sample registry's) and the probe's, alone in its packaging type.
GTINS = ["07038010001239", "07038010002342", "07310865004703"]
PROBE_TYPE = "probe"
PROBE_GTIN = ("703801099999" + gtin_check_digit("703801099999")).zfill(14)
BACKGROUND_TYPES = ("sold", "returned", "returned", "rejected")
# One probe per this many seconds (s): 10 per second, a negligible share of the load.
PROBE_INTERVAL_S = 0.1
# Background traffic before the first probe, so connections and caches are warm (s).
WARMUP_S = 3.0
# The fleet's pacing granularity (s): events due are scanned in bursts this far apart.
TICK_S = 0.005
# After the fleet has stopped, how long the last probes may take to show up (s).
SETTLE_TIMEOUT_S = 15.0
# How long the fleet may take beyond its schedule to flush, close and report (s).
FLEET_GRACE_S = 90.0
# Events per client message at most (the client's default).
CLIENT_BATCH_SIZE = 100
TARGET_P99_MS = 1000.0


# --- the fleet (its own process) ----------------------------------------------------------


@dataclass(frozen=True)
class FleetPlan:
    broker: str
    topic_root: str
    devices: list[str]
    rate: float  # background events/s over all devices
    seconds: float  # measured time, after WARMUP_S
    batch_interval_s: float


@dataclass(frozen=True)
class FleetReport:
    probe_ids: list[str]  # in scan order
    probe_scanned_at: list[float]  # wall clock, s since the epoch
    scanned: int  # all events, warm-up and probes included
    background_rate: float  # background events/s achieved while probing
    max_behind_s: float  # how far the generator fell behind its schedule at worst


@contextmanager
def connected_fleet(plan: FleetPlan, pipe: Connection) -> Iterator[list[DeviceClient]]:
    """The plan's devices (in-memory queues), connected; "ready" is sent and "go" received
    before the body runs. Closed on the way out: waiting for acknowledgements after a
    body that finished, at once after one that failed (DeviceClient's sender thread is
    not a daemon: without close() the fleet's process would never exit)."""
    clients = [
        DeviceClient(
            device,
            plan.broker,
            topic_root=plan.topic_root,
            queue_path=None,
            batch_size=CLIENT_BATCH_SIZE,
            batch_interval_s=plan.batch_interval_s,
        )
        for device in plan.devices
    ]
    finished = False
    try:
        for client in clients:
            client.start()
        for client in clients:
            if not client.wait_connected(10):
                raise RuntimeError(f"device {client.device_id} could not connect")
        pipe.send("ready")
        pipe.recv()
        yield clients
        finished = True
    finally:
        for client in clients:
            if finished:
                client.close()
            else:
                client.close(timeout_s=1)


def run_fleet(plan: FleetPlan, pipe: Connection) -> None:
    """Connect the devices, wait for "go", produce `plan.rate` events/s with probes, then
    flush, disconnect and send a FleetReport."""
    with connected_fleet(plan, pipe) as clients:
        report = _produce(plan, clients)
        for client in clients:
            client.flush(60)
    pipe.send(report)


def _produce(plan: FleetPlan, clients: list[DeviceClient]) -> FleetReport:
    probe_ids: list[str] = []
    probe_scanned_at: list[float] = []
    started = time.perf_counter()
    probing_from = started + WARMUP_S
    stop_at = probing_from + plan.seconds
    next_probe = probing_from
    sent = sent_at_probing = 0
    max_behind = 0.0
    while (now := time.perf_counter()) < stop_at:
        due = int((now - started) * plan.rate)
        max_behind = max(max_behind, (due - sent) / plan.rate - TICK_S)
        while sent < due:
            kind = BACKGROUND_TYPES[sent % len(BACKGROUND_TYPES)]
            clients[sent % len(clients)].scan(
                kind,
                gtin=GTINS[sent % len(GTINS)],
                reason="damaged" if kind == "rejected" else None,
            )
            sent += 1
        if now >= next_probe:
            if not probe_ids:
                sent_at_probing = sent
            scanned_at = time.time()
            probe_ids.append(
                clients[0].scan("sold", gtin=PROBE_GTIN, ts=datetime.fromtimestamp(scanned_at, UTC))
            )
            probe_scanned_at.append(scanned_at)
            next_probe += PROBE_INTERVAL_S
        time.sleep(max(0.0, min(TICK_S, next_probe - time.perf_counter())))
    background_rate = (sent - sent_at_probing) / (time.perf_counter() - probing_from)
    return FleetReport(
        probe_ids, probe_scanned_at, sent + len(probe_ids), background_rate, max(0, max_behind)
    )


# --- this process: database, services, poller, observer ---------------------------------


def new_database(devices: list[str], bench: str = "e2e") -> tuple[str, str, str]:
    """A migrated scratch database with the registry; returns (name, url, operator key)."""
    name = f"looptrack_bench_{bench}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(PG_SERVER, dbname=name)
    migrate(url, timezone=ZONE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO packaging_types (id, name, material, deposit, weight_g) VALUES"
            " ('pet', 'PET', 'PET', 200, 22), (%s, 'Latency probe', 'other', 0, NULL)",
            (PROBE_TYPE,),
        )
        for gtin in GTINS:
            conn.execute("INSERT INTO products VALUES (%s, 'pet', 'b', 'n')", (gtin,))
        conn.execute(
            "INSERT INTO products VALUES (%s, %s, 'probe', 'Probe')", (PROBE_GTIN, PROBE_TYPE)
        )
        conn.execute("INSERT INTO sites (id, name, kind) VALUES ('s', 'S', 'shop')")
        for device in devices:
            conn.execute(
                "INSERT INTO devices (id, site_id, kind) VALUES (%s, 's', 'rvm')", (device,)
            )
        key = create_key(conn, Role.OPERATOR, "bench-e2e")
    return name, url, key


def drop_database(name: str) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def events_stored(url: str) -> int:
    """Events stored so far, from the workers' counters (no scan of `events`)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(sum(stored), 0) FROM ingest_counters").fetchone()
    return int(row[0]) if row else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "looptrack", "ingest"], env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 30
    while "subscribed group=" not in log.read_text():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"worker did not subscribe:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return process


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "looptrack", "--log-level", "WARNING", "api", "--port",
             str(port)],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not port_open(port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"API did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(60)


@dataclass
class Rig:
    """What `rig()` started: a database, a broker, the worker and the API."""

    url: str
    key: str  # an operator API key
    broker: LocalMosquitto
    topic_root: str
    worker: subprocess.Popen[bytes]
    api: subprocess.Popen[bytes]
    port: int  # the API's


@contextmanager
def rig(devices: list[str], bench: str) -> Iterator[Rig]:
    """A scratch database with the registry, a Mosquitto of its own (the project's
    config), the ingest worker and the API as subprocesses; all stopped and removed on
    the way out, Ctrl-C and SIGTERM included (SIGTERM unwinds like Ctrl-C)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    name, url, key = new_database(devices, bench)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix=f"looptrack-bench-{bench}-") as tmp:
            workdir = Path(tmp)
            broker = LocalMosquitto(workdir / "mosquitto")
            broker.start()
            topic_root = f"bench/{bench}-{uuid.uuid4().hex[:6]}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPTRACK_")}
            env.update(
                LOOPTRACK_DATABASE_URL=url,
                LOOPTRACK_MQTT_URL=broker.url,
                LOOPTRACK_TOPIC_ROOT=topic_root,
                LOOPTRACK_MQTT_GROUP="bench",
                LOOPTRACK_INGEST_CLIENT_ID=f"bench-{bench}-{uuid.uuid4().hex[:6]}",
                LOOPTRACK_TIMEZONE=ZONE,
                PYTHONPATH=str(ROOT),
            )
            try:
                worker = start_worker(env, workdir / "worker.log")
                processes.append(worker)
                port = free_port()
                api = start_api(env, port, workdir / "api.log")
                processes.append(api)
                yield Rig(url, key, broker, topic_root, worker, api, port)
            finally:
                for process in reversed(processes):
                    stop(process)
                broker.stop()
    finally:
        drop_database(name)


class StatsPoller:
    """The probe type's `sold` in `/v1/stats/return-rates`, over one keep-alive connection."""

    def __init__(self, port: int, key: str) -> None:
        today = datetime.now(UTC).date()
        # Whole days around today: the day rollups, as a dashboard showing "this week" reads.
        self.path = (
            f"/v1/stats/return-rates?bucket=total&packaging_type={PROBE_TYPE}&tz={ZONE}"
            f"&from={today - timedelta(days=1)}&to={today + timedelta(days=2)}"
        )
        self.headers = {"Authorization": f"Bearer {key}"}
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def sold(self) -> int:
        for attempt in (1, 2):
            try:
                self.conn.request("GET", self.path, headers=self.headers)
                response = self.conn.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the server closed the idle connection: reopen once
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RuntimeError(f"{self.path}: HTTP {response.status} {body[:300]!r}")
        return sum(int(row["sold"]) for row in json.loads(body)["rows"])

    def close(self) -> None:
        self.conn.close()


class ProbeObserver:
    """A plain (not shared) MQTT subscriber on the probe device's events topic: notes when
    each probe event reached the broker (wall clock, s since the epoch)."""

    def __init__(self, broker: LocalMosquitto, topic: str) -> None:
        self.arrived: dict[str, float] = {}
        self.topic = topic
        self.subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-observer-{uuid.uuid4().hex[:6]}"
        )
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        endpoint = parse_mqtt_url(broker.url)
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        self.client = client
        if not self.subscribed.wait(10):
            raise RuntimeError("probe observer could not subscribe")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        client.subscribe(self.topic, qos=0)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _m: int, _rc: Any, _p: Any) -> None:
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        arrived = time.time()
        if PROBE_GTIN.encode() not in message.payload:
            return
        data = json.loads(message.payload)
        for event in data.get("events", [data]):
            if event.get("gtin") == PROBE_GTIN:
                self.arrived.setdefault(event["event_id"], arrived)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class RunResult:
    batch_interval_s: float
    seconds: float
    background_rate: float
    max_behind_s: float
    probes: int
    visible: int
    to_broker_ms: list[float]
    to_visible_ms: list[float]
    broker_to_visible_ms: list[float]
    poll_gap_ms: list[float]
    poll_request_ms: list[float]
    scanned: int
    stored: int
    worker_cpu: float  # share of one core
    api_cpu: float
    load: float  # 1-minute load average at the end


@dataclass
class Bench:
    url: str
    broker: LocalMosquitto
    topic_root: str
    devices: list[str]
    rate: float
    poll_s: float
    poller: StatsPoller
    observer: ProbeObserver
    worker: subprocess.Popen[bytes]
    api: subprocess.Popen[bytes]

    def run(self, batch_interval_s: float, seconds: float) -> RunResult:
        plan = FleetPlan(
            self.broker.url, self.topic_root, self.devices, self.rate, seconds, batch_interval_s
        )
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        fleet = context.Process(target=run_fleet, args=(plan, theirs), daemon=True)
        fleet.start()
        if not ours.poll(60) or ours.recv() != "ready":
            raise RuntimeError("the device fleet did not connect")
        baseline = self.poller.sold()
        stored_before = events_stored(self.url)
        cpu_before = (cpu_seconds(self.worker.pid), cpu_seconds(self.api.pid))
        went = time.monotonic()
        give_up = went + WARMUP_S + seconds + FLEET_GRACE_S
        ours.send("go")
        polls: list[tuple[float, float, int]] = []  # (sent, answered, probes visible)
        report: FleetReport | None = None
        settle_deadline = math.inf
        busy_s, cpu_after = math.nan, cpu_before
        while True:
            sent = time.time()
            visible = self.poller.sold() - baseline
            answered = time.time()
            polls.append((sent, answered, visible))
            if report is None and ours.poll():
                report = ours.recv()
                settle_deadline = time.monotonic() + SETTLE_TIMEOUT_S
                busy_s = time.monotonic() - went
                cpu_after = (cpu_seconds(self.worker.pid), cpu_seconds(self.api.pid))
            if report is not None and (
                visible >= len(report.probe_ids) or time.monotonic() > settle_deadline
            ):
                break
            if report is None and not fleet.is_alive():
                raise RuntimeError(f"the device fleet died (exit code {fleet.exitcode})")
            if report is None and time.monotonic() > give_up:
                fleet.kill()
                raise RuntimeError("the device fleet did not report in time")
            time.sleep(max(0.0, sent + self.poll_s - time.time()))
        assert report is not None
        fleet.join(30)
        stored = events_stored(self.url) - stored_before
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while stored < report.scanned and time.monotonic() < deadline:
            time.sleep(0.1)
            stored = events_stored(self.url) - stored_before

        # The k-th probe is visible from the first poll that counts k of them.
        visible_at: list[float] = []
        for _, answered, count in polls:
            while len(visible_at) < min(count, len(report.probe_ids)):
                visible_at.append(answered)
        to_visible = [
            (seen - scanned) * 1000
            for seen, scanned in zip(visible_at, report.probe_scanned_at, strict=False)
        ]
        arrived = [self.observer.arrived.get(probe) for probe in report.probe_ids]
        to_broker = [
            (at - scanned) * 1000
            for at, scanned in zip(arrived, report.probe_scanned_at, strict=True)
            if at is not None
        ]
        broker_to_visible = [
            (seen - at) * 1000
            for seen, at in zip(visible_at, arrived, strict=False)
            if at is not None
        ]
        first, last = report.probe_scanned_at[0], report.probe_scanned_at[-1]
        measured = [p for p in polls if first <= p[1] <= last + 1]
        return RunResult(
            batch_interval_s=batch_interval_s,
            seconds=seconds,
            background_rate=report.background_rate,
            max_behind_s=report.max_behind_s,
            probes=len(report.probe_ids),
            visible=len(visible_at),
            to_broker_ms=to_broker,
            to_visible_ms=to_visible,
            broker_to_visible_ms=broker_to_visible,
            poll_gap_ms=[(b[1] - a[1]) * 1000 for a, b in itertools.pairwise(measured)],
            poll_request_ms=[(p[1] - p[0]) * 1000 for p in measured],
            scanned=report.scanned,
            stored=stored,
            worker_cpu=(cpu_after[0] - cpu_before[0]) / busy_s,
            api_cpu=(cpu_after[1] - cpu_before[1]) / busy_s,
            load=os.getloadavg()[0],
        )


def print_results(args: argparse.Namespace, results: list[RunResult]) -> None:
    print(
        f"machine: {os.cpu_count()} CPUs; broker, database, worker, API, devices and poller on "
        f"this host. {args.devices} devices, target {args.rate:,.0f} events/s, client "
        f"batch_size {CLIENT_BATCH_SIZE}; worker flush interval {FLUSH_INTERVAL_S * 1000:.0f} ms;"
        f" {1 / PROBE_INTERVAL_S:.0f} probes/s; stats polled every {args.poll_ms:g} ms"
    )
    print(
        "ms from DeviceClient.scan() to: the broker (→broker), and to being counted by "
        "GET /v1/stats/return-rates (visible); broker→visible = worker + commit + API"
    )
    print(
        f"{'client batch':>12} {'run':>4} {'events/s':>8} {'probes':>9} "
        f"{'→broker p50/p99':>15} {'broker→visible p50/p99':>22} "
        f"{'visible p50':>11} {'p95':>5} {'p99':>5} {'max':>5} "
        f"{'poll gap/req':>12} {'stored/scanned':>15} {'CPU worker/API':>14} {'load':>4}"
    )
    for r in results:
        brk = r.to_broker_ms or [math.nan]
        ing = r.broker_to_visible_ms or [math.nan]
        lat = r.to_visible_ms or [math.nan]
        print(
            f"{r.batch_interval_s * 1000:>10.0f}ms {r.seconds:>3.0f}s {r.background_rate:>8,.0f} "
            f"{f'{r.visible}/{r.probes}':>9} "
            f"{f'{percentile(brk, 50):.0f}/{percentile(brk, 99):.0f}':>15} "
            f"{f'{percentile(ing, 50):.0f}/{percentile(ing, 99):.0f}':>22} "
            f"{percentile(lat, 50):>11.0f} {percentile(lat, 95):>5.0f} "
            f"{percentile(lat, 99):>5.0f} {max(lat):>5.0f} "
            f"{f'{mean(r.poll_gap_ms):.0f}/{mean(r.poll_request_ms):.0f} ms':>12} "
            f"{f'{r.stored:,}/{r.scanned:,}':>15} "
            f"{f'{r.worker_cpu:.0%}/{r.api_cpu:.0%}':>14} {r.load:>4.1f}"
        )
    print(
        "visible times are poll answers: late by up to one poll gap; CPU as share of one core; "
        "load = 1-minute load average at the end of the run"
    )
    for r in results:
        if r.stored != r.scanned or r.visible != r.probes:
            print(
                f"WARNING batch interval {r.batch_interval_s:g} s: stored {r.stored:,} of "
                f"{r.scanned:,} events scanned, {r.visible} of {r.probes} probes visible"
            )
        if r.max_behind_s > 0.1:
            print(
                f"note batch interval {r.batch_interval_s:g} s: the device fleet fell up to "
                f"{r.max_behind_s * 1000:.0f} ms behind its schedule (probes are timed at scan)"
            )
    first = results[0]
    p99 = percentile(first.to_visible_ms, 99) if first.to_visible_ms else math.inf
    rate_ok = first.background_rate >= 0.95 * args.rate
    passed = p99 < TARGET_P99_MS and rate_ok and first.visible == first.probes
    print(
        f"verdict: {'PASS' if passed else 'FAIL'}: p99 publish → visible in /v1/stats "
        f"{p99:.0f} ms at {first.background_rate:,.0f} events/s "
        f"(client batch interval {first.batch_interval_s:g} s; target p99 < "
        f"{TARGET_P99_MS:.0f} ms at {args.rate:,.0f} events/s, SPEC §10)"
    )


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000, help="background events/s")
    parser.add_argument("--seconds", type=float, default=60, help="measured time of the first run")
    parser.add_argument("--devices", type=int, default=20, help="simulated RVMs")
    parser.add_argument(
        "--batch-interval", type=float, default=0.5, help="client batch_interval_s, first run"
    )
    parser.add_argument(
        "--compare", default="0.1,1.0", help="more client batch intervals (s), comma-separated"
    )
    parser.add_argument("--compare-seconds", type=float, default=30)
    parser.add_argument("--poll-ms", type=float, default=20, help="stats poll interval (ms)")
    args = parser.parse_args()
    intervals = [(args.batch_interval, args.seconds)] + [
        (float(s), args.compare_seconds) for s in args.compare.split(",") if s.strip()
    ]
    devices = [f"rvm-{i:03d}" for i in range(args.devices)]
    results: list[RunResult] = []
    observer = poller = None
    with rig(devices, "e2e") as running:
        try:
            poller = StatsPoller(running.port, running.key)
            observer = ProbeObserver(
                running.broker, f"{running.topic_root}/devices/{devices[0]}/events"
            )
            bench = Bench(
                running.url, running.broker, running.topic_root, devices, args.rate,
                args.poll_ms / 1000, poller, observer, running.worker, running.api,
            )  # fmt: skip
            for interval, seconds in intervals:
                results.append(bench.run(interval, seconds))
                print(f"... batch interval {interval:g} s done", file=sys.stderr, flush=True)
        finally:
            if observer is not None:
                observer.close()
            if poller is not None:
                poller.close()
    print_results(args, results)


if __name__ == "__main__":
    main()
