"""Soak: the whole pipeline at a fixed event rate for minutes; throughput, publish → visible
latency and the ingest worker's memory over time (SPEC §10).

    python bench/soak.py [--rate 1000] [--minutes 10] [--devices 20] [--sample-s 30]
                         [--poll-ms 20]

The rig is bench/e2e_latency.py's, imported from it: its own Mosquitto (the project's
config), its own database on the local PostgreSQL, the ingest worker and the API as real
subprocesses, and a fleet of simulated RVMs (`devices.DeviceClient`, client batch interval
0.5 s) in a separate process producing `--rate` events/s round robin, plus 10 probes/s
from the first device, timed at `scan()` and seen in `GET /v1/stats/return-rates`, polled
every `--poll-ms` (as there: latency is scan() → visible, late by up to one poll gap).

Every `--sample-s` it prints: elapsed time; events published (acknowledged by the
broker) and stored (the workers' counters) so far; stored/s over the interval; backlog
(events published but not yet committed by the worker; the fleet reports its count every
0.1 s, so this can read up to 0.1 s of events low, even below 0); messages queued in the
broker (`$SYS` store count less retained messages, up to 10 s old); worker and API
resident memory (VmRSS, MB = 2^20 bytes); worker CPU (share of one core); p99 latency of
the probes that became visible in the interval. The last sample waits for the fleet's
flush (all its events acknowledged by the broker); once the worker has drained, it prints
a summary and a verdict. Each check must hold:

  nothing lost: published - stored = 0 after the drain (dead letters are printed too);
  memory flat:  worker RSS at the last sample ≤ RSS at the warm-up sample (the first
                sample at or after 60 s) + max(10 % of it, 10 MB); only growth fails;
                a run too short to have a sample after the warm-up sample fails;
  latency:      p99 scan() → visible over the whole run < 1 s (SPEC §10, 1,000 events/s),
                and every probe visible;
  throughput:   background events stored per second, from "go" until the drain finished,
                ≥ 99 % of `--rate` (the drain's tail, about one latency, counts against it).

Exit code 0 when all pass, 1 otherwise. Ctrl-C or SIGTERM stops the processes, drops the
database and removes the temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e_latency import (  # noqa: E402
    BACKGROUND_TYPES,
    FLEET_GRACE_S,
    GTINS,
    PROBE_GTIN,
    PROBE_INTERVAL_S,
    TARGET_P99_MS,
    TICK_S,
    FleetPlan,
    StatsPoller,
    connected_fleet,
    cpu_seconds,
    percentile,
    rig,
)
from devices.client import DeviceClient  # noqa: E402
from looptrack.local_services import LocalMosquitto  # noqa: E402
from schemas.settings import parse_mqtt_url  # noqa: E402

# The client's default batch interval (s), as a real RVM sends.
BATCH_INTERVAL_S = 0.5
# Memory is judged from the first sample at or after this (s): imports, pools, caches and
# the first rollup rows are in place by then.
MEMORY_WARMUP_S = 60.0
# Allowed worker RSS growth from the warm-up sample to the last: this share or this many
# MB, whichever is larger.
MEMORY_GROWTH_SHARE = 0.10
MEMORY_GROWTH_MB = 10.0
# Stored background events/s over the run, as a share of --rate, to count as keeping up.
THROUGHPUT_SHARE = 0.99
# After the fleet has flushed, how long the worker may take to store the rest (s).
DRAIN_TIMEOUT_S = 60.0
# Mosquitto's $SYS topics read (published every sys_interval, 10 s by default).
SYS_STORED = "$SYS/broker/store/messages/count"
SYS_RETAINED = "$SYS/broker/retained messages/count"
SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_HEAP = "$SYS/broker/heap/current"


# --- the fleet (its own process) ----------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Sent by the fleet with every probe and once at the end (`done`, after the flush)."""

    scanned: int  # all events so far, probes included
    unacked: int  # scanned but not yet acknowledged by the broker
    probe_scanned_at: float | None  # wall clock of the probe just scanned (s since the epoch)
    max_behind_s: float  # how far the generator fell behind its schedule at worst
    done: bool = False


def run_soak_fleet(plan: FleetPlan, pipe: Connection) -> None:
    """Connect the devices, wait for "go", produce `plan.rate` events/s and probes for
    `plan.seconds`, reporting Progress with each probe; flush, close, report `done`."""
    with connected_fleet(plan, pipe) as clients:
        scanned, max_behind = _produce(plan, clients, pipe)
        for client in clients:
            client.flush(60)
        unacked = sum(client.pending for client in clients)
    pipe.send(Progress(scanned, unacked, None, max_behind, done=True))


def _produce(plan: FleetPlan, clients: list[DeviceClient], pipe: Connection) -> tuple[int, float]:
    """Returns (events scanned, probes included; worst lag behind the schedule in s)."""
    started = time.perf_counter()
    stop_at = started + plan.seconds
    next_probe = started
    sent = probes = 0
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
            scanned_at = time.time()
            clients[0].scan("sold", gtin=PROBE_GTIN, ts=datetime.fromtimestamp(scanned_at, UTC))
            probes += 1
            unacked = sum(client.pending for client in clients)
            pipe.send(Progress(sent + probes, unacked, scanned_at, max(0.0, max_behind)))
            next_probe += PROBE_INTERVAL_S
        time.sleep(max(0.0, min(TICK_S, next_probe - time.perf_counter())))
    return sent + probes, max(0.0, max_behind)


# --- this process: observation ------------------------------------------------------------


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM, …) in MB (2^20 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


@dataclass(frozen=True)
class Totals:
    """The workers' running counters (events)."""

    stored: int
    duplicates: int
    dead_lettered: int

    @property
    def committed(self) -> int:
        return self.stored + self.duplicates + self.dead_lettered


def ingest_totals(conn: psycopg.Connection[Any]) -> Totals:
    row = conn.execute(
        "SELECT coalesce(sum(stored), 0), coalesce(sum(duplicates), 0),"
        " coalesce(sum(dead_lettered), 0) FROM ingest_counters"
    ).fetchone()
    assert row is not None
    return Totals(int(row[0]), int(row[1]), int(row[2]))


class BrokerStats:
    """The latest values of a few of Mosquitto's `$SYS` topics."""

    def __init__(self, broker: LocalMosquitto) -> None:
        self.values: dict[str, float] = {}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-soak-sys-{uuid.uuid4().hex[:6]}"
        )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        endpoint = parse_mqtt_url(broker.url)
        client.connect(endpoint.host, endpoint.port)
        client.loop_start()
        self.client = client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        client.subscribe(
            [(topic, 0) for topic in (SYS_STORED, SYS_RETAINED, SYS_DROPPED, SYS_HEAP)]
        )

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        # Not a number (never expected for these topics): the figure stays unknown.
        with contextlib.suppress(ValueError):
            self.values[message.topic] = float(message.payload)

    def queued(self) -> float | None:
        """Messages held by the broker that are not retained: queued or in flight."""
        stored, retained = self.values.get(SYS_STORED), self.values.get(SYS_RETAINED)
        if stored is None or retained is None:
            return None
        # The two counts come in separate messages: read between them, they can disagree.
        return max(0.0, stored - retained)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Sample:
    elapsed_s: float
    published: int
    stored: int
    stored_per_s: float
    backlog: int
    broker_queued: float | None
    worker_rss_mb: float
    api_rss_mb: float
    worker_cpu: float  # share of one core over the interval
    probes: int  # became visible in the interval
    p99_ms: float | None


@dataclass
class Run:
    """What the main loop has seen so far."""

    went: float  # monotonic time of "go"
    progress: Progress | None = None
    probe_scanned_at: list[float] = field(default_factory=list)
    visible_at: list[float] = field(default_factory=list)  # wall clock, k-th probe counted
    samples: list[Sample] = field(default_factory=list)

    def latencies_ms(self, seen_from: float = 0.0, seen_until: float = float("inf")) -> list[float]:
        """scan() → visible of the probes seen (wall clock) in [seen_from, seen_until)."""
        return [
            (seen - scanned) * 1000
            for seen, scanned in zip(self.visible_at, self.probe_scanned_at, strict=False)
            if seen_from <= seen < seen_until
        ]


def fmt_elapsed(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


HEADER = (
    f"{'elapsed':>7} {'published':>10} {'stored':>10} {'stored/s':>8} {'backlog':>7} "
    f"{'broker q':>8} {'worker RSS':>10} {'API RSS':>8} {'worker CPU':>10} {'p99 ms':>6} "
    f"{'probes':>6}"
)


def print_sample(s: Sample) -> None:
    queued = "?" if s.broker_queued is None else f"{s.broker_queued:,.0f}"
    p99 = "-" if s.p99_ms is None else f"{s.p99_ms:.0f}"
    print(
        f"{fmt_elapsed(s.elapsed_s):>7} {s.published:>10,} {s.stored:>10,} "
        f"{s.stored_per_s:>8,.0f} {s.backlog:>7,} {queued:>8} {s.worker_rss_mb:>7.1f} MB "
        f"{s.api_rss_mb:>5.1f} MB {s.worker_cpu:>10.0%} {p99:>6} {s.probes:>6}",
        flush=True,
    )


# --- the soak -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    run: Run
    final: Progress
    totals: Totals
    dead_letters: int
    drained_after_s: float  # from the fleet's last acknowledgement to all committed
    elapsed_s: float  # "go" until drained
    worker_peak_mb: float  # VmHWM
    api_peak_mb: float
    broker_dropped: float | None
    broker_heap_mb: float | None


def soak(
    args: argparse.Namespace,
    plan: FleetPlan,
    conn: psycopg.Connection[Any],
    poller: StatsPoller,
    broker_stats: BrokerStats,
    worker: subprocess.Popen[bytes],
    api: subprocess.Popen[bytes],
) -> Outcome:
    duration = plan.seconds
    sample_at = [args.sample_s * k for k in range(1, int(duration / args.sample_s) + 1)]
    if not sample_at or sample_at[-1] < duration - 1e-6:
        sample_at.append(duration)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    fleet = context.Process(target=run_soak_fleet, args=(plan, theirs), daemon=True)
    fleet.start()
    try:
        if not ours.poll(60) or ours.recv() != "ready":
            raise RuntimeError("the device fleet did not connect")
        baseline = poller.sold()
        last_stored = ingest_totals(conn).stored
        last_cpu = cpu_seconds(worker.pid)
        run = Run(went=time.monotonic())
        last_sample_mono, last_sample_wall = run.went, time.time()
        give_up = run.went + duration + FLEET_GRACE_S
        done_at = drain_deadline = float("inf")
        ours.send("go")
        print(HEADER, flush=True)
        while True:
            polled = time.time()
            visible = poller.sold() - baseline
            answered = time.time()
            if visible > len(run.visible_at):
                run.visible_at.extend([answered] * (visible - len(run.visible_at)))
            while ours.poll():
                progress: Progress = ours.recv()
                run.progress = progress
                if progress.probe_scanned_at is not None:
                    run.probe_scanned_at.append(progress.probe_scanned_at)
                if progress.done:
                    done_at = time.monotonic()
                    drain_deadline = done_at + DRAIN_TIMEOUT_S
            for process, name in ((worker, "worker"), (api, "API")):
                if process.poll() is not None:
                    raise RuntimeError(f"the {name} exited with code {process.returncode}")
            now = time.monotonic()
            done = run.progress is not None and run.progress.done
            due = (
                len(run.samples) < len(sample_at) and now - run.went >= sample_at[len(run.samples)]
            )
            # The last sample waits for the fleet's flush, so its published count is final.
            if due and (done or len(run.samples) < len(sample_at) - 1):
                totals = ingest_totals(conn)
                cpu = cpu_seconds(worker.pid)
                published = (
                    0 if run.progress is None else run.progress.scanned - run.progress.unacked
                )
                interval = run.latencies_ms(last_sample_wall, answered + 1e-6)
                sample = Sample(
                    elapsed_s=now - run.went,
                    published=published,
                    stored=totals.stored,
                    stored_per_s=(totals.stored - last_stored) / (now - last_sample_mono),
                    backlog=published - totals.committed,
                    broker_queued=broker_stats.queued(),
                    worker_rss_mb=rss_mb(worker.pid),
                    api_rss_mb=rss_mb(api.pid),
                    worker_cpu=(cpu - last_cpu) / (now - last_sample_mono),
                    probes=len(interval),
                    p99_ms=percentile(interval, 99) if interval else None,
                )
                run.samples.append(sample)
                print_sample(sample)
                last_stored, last_cpu = totals.stored, cpu
                last_sample_mono, last_sample_wall = now, answered + 1e-6
            if run.progress is not None and done:
                totals = ingest_totals(conn)
                all_in = totals.committed >= run.progress.scanned and len(run.visible_at) >= len(
                    run.probe_scanned_at
                )
                if len(run.samples) == len(sample_at) and (all_in or now > drain_deadline):
                    break
            elif not fleet.is_alive():
                raise RuntimeError(f"the device fleet died (exit code {fleet.exitcode})")
            elif now > give_up:
                raise RuntimeError("the device fleet did not report in time")
            time.sleep(max(0.0, polled + args.poll_ms / 1000 - time.time()))
        drained = time.monotonic()
        fleet.join(30)
    finally:
        if fleet.is_alive():
            fleet.kill()
            fleet.join(5)
    assert run.progress is not None  # the loop ends only after `done`
    heap = broker_stats.values.get(SYS_HEAP)
    (dead_letters,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone() or (0,)
    return Outcome(
        run=run,
        final=run.progress,
        totals=totals,
        dead_letters=int(dead_letters),
        drained_after_s=drained - done_at,
        elapsed_s=drained - run.went,
        worker_peak_mb=rss_mb(worker.pid, "VmHWM"),
        api_peak_mb=rss_mb(api.pid, "VmHWM"),
        broker_dropped=broker_stats.values.get(SYS_DROPPED),
        broker_heap_mb=None if heap is None else heap / 2**20,
    )


def print_summary(args: argparse.Namespace, o: Outcome) -> bool:
    """Prints the summary and the verdict; True when every check passes."""
    run, samples = o.run, o.run.samples
    probes = len(run.probe_scanned_at)
    published = o.final.scanned - o.final.unacked
    lost = published - o.totals.stored
    background_per_s = (o.totals.stored - probes) / o.elapsed_s
    offered_per_s = (o.final.scanned - probes) / (args.minutes * 60)
    latencies = run.latencies_ms()
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; broker, database, "
        f"worker, API, devices and poller on this host. {args.devices} devices, target "
        f"{args.rate:,.0f} events/s for {args.minutes:g} min (offered {offered_per_s:,.0f}/s, "
        f"+{1 / PROBE_INTERVAL_S:.0f} probes/s); client batch interval {BATCH_INTERVAL_S:g} s"
    )
    if o.final.max_behind_s > 0.1:
        print(f"note: the fleet fell up to {o.final.max_behind_s * 1000:.0f} ms behind schedule")
    dropped = "?" if o.broker_dropped is None else f"{o.broker_dropped:,.0f}"
    print(
        f"events: published {published:,}  stored {o.totals.stored:,}  lost {lost:,}  "
        f"dead letters {o.dead_letters:,}  duplicates {o.totals.duplicates:,}  "
        f"unacknowledged by the broker {o.final.unacked:,}  broker dropped {dropped}; "
        f"drained {o.drained_after_s:.1f} s after the fleet's flush"
    )
    print(
        f"throughput: {o.totals.stored / o.elapsed_s:,.0f} events/s stored over "
        f"{o.elapsed_s:.1f} s (go → drained); background {background_per_s:,.0f}/s = "
        f"{background_per_s / args.rate:.1%} of --rate"
    )
    if latencies:
        print(
            f"latency scan() → visible, {len(latencies):,} of {probes:,} probes (ms): "
            f"p50 {percentile(latencies, 50):.0f}  p95 {percentile(latencies, 95):.0f}  "
            f"p99 {percentile(latencies, 99):.0f}  max {max(latencies):.0f}"
        )
    else:
        print(f"latency: none of {probes:,} probes became visible")
    warm = next((s for s in samples if s.elapsed_s >= MEMORY_WARMUP_S), None)
    last = samples[-1]
    heap = "?" if o.broker_heap_mb is None else f"{o.broker_heap_mb:.1f} MB"
    print(
        f"worker RSS: first {samples[0].worker_rss_mb:.1f} MB ({fmt_elapsed(samples[0].elapsed_s)})"
        + (f", warm-up {warm.worker_rss_mb:.1f} MB ({fmt_elapsed(warm.elapsed_s)})" if warm else "")
        + f", last {last.worker_rss_mb:.1f} MB ({fmt_elapsed(last.elapsed_s)}), max sample "
        f"{max(s.worker_rss_mb for s in samples):.1f} MB, peak (VmHWM) {o.worker_peak_mb:.1f} MB"
        f" (SPEC §10: under 200 MB)"
    )
    print(
        f"API RSS: first {samples[0].api_rss_mb:.1f} MB, last {last.api_rss_mb:.1f} MB, "
        f"max sample {max(s.api_rss_mb for s in samples):.1f} MB, peak {o.api_peak_mb:.1f} MB; "
        f"broker heap at the end {heap}"
    )

    checks: list[tuple[str, bool]] = [(f"lost {lost:,} = 0", lost == 0)]
    if warm is None or warm is last:
        checks.append((f"memory: no sample after the warm-up ({MEMORY_WARMUP_S:.0f} s)", False))
    else:
        allowed = max(MEMORY_GROWTH_SHARE * warm.worker_rss_mb, MEMORY_GROWTH_MB)
        checks.append(
            (
                f"memory flat: last {last.worker_rss_mb:.1f} MB ≤ warm-up "
                f"{warm.worker_rss_mb:.1f} + {allowed:.1f} MB",
                last.worker_rss_mb <= warm.worker_rss_mb + allowed,
            )
        )
    p99 = percentile(latencies, 99) if latencies else float("inf")
    checks.append(
        (
            f"p99 {p99:.0f} ms < {TARGET_P99_MS:.0f} ms",
            p99 < TARGET_P99_MS and len(latencies) == probes,
        )
    )
    checks.append(
        (
            f"throughput {background_per_s / args.rate:.1%} ≥ {THROUGHPUT_SHARE:.0%} of "
            f"{args.rate:,.0f}/s",
            background_per_s >= THROUGHPUT_SHARE * args.rate,
        )
    )
    passed = all(ok for _, ok in checks)
    print(
        f"verdict: {'PASS' if passed else 'FAIL'}: "
        + "; ".join(f"{text} {'ok' if ok else 'FAIL'}" for text, ok in checks)
    )
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000, help="background events/s")
    parser.add_argument("--minutes", type=float, default=10, help="how long the fleet produces")
    parser.add_argument("--devices", type=int, default=20, help="simulated RVMs")
    parser.add_argument("--sample-s", type=float, default=30, help="seconds between samples")
    parser.add_argument("--poll-ms", type=float, default=20, help="stats poll interval (ms)")
    args = parser.parse_args()
    devices = [f"rvm-{i:03d}" for i in range(args.devices)]
    poller = broker_stats = None
    with rig(devices, "soak") as running:
        try:
            poller = StatsPoller(running.port, running.key)
            broker_stats = BrokerStats(running.broker)
            plan = FleetPlan(
                running.broker.url, running.topic_root, devices, args.rate, args.minutes * 60,
                BATCH_INTERVAL_S,
            )  # fmt: skip
            with psycopg.connect(running.url, autocommit=True) as conn:
                outcome = soak(args, plan, conn, poller, broker_stats, running.worker, running.api)
        finally:
            if broker_stats is not None:
                broker_stats.close()
            if poller is not None:
                poller.close()
    sys.exit(0 if print_summary(args, outcome) else 1)


if __name__ == "__main__":
    main()
