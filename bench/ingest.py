"""Ingest throughput, MQTT → committed rows, next to a bare COPY of the same rows.

    python bench/ingest.py [--batched 200000] [--single 50000] [--only single,serial]
                           [--ids v4|v7] [--stored 20000000]

Starts its own Mosquitto (the project's config) and its own database on the local
PostgreSQL, then measures in one run:
  1. bare COPY of the rows into `events` (the raw ceiling: no parsing, no dedup, no rollups);
  2. batched payloads (500 events per message): worker drains a backlog queued while it was
     stopped, so the figure is the worker's capacity, not the publisher's; once more with
     every event of a serialised item (the reuse aggregates' share of the work);
  3. the same with one event per message;
  4. live: publisher and worker running at the same time (one event per message).
Prints events/s, the ratio to the bare COPY, and the worker's peak resident memory. A
backlog is timed from the moment the workers have subscribed: the capacity of running
workers, without the half second a Python process takes to start (`incl. start` times it
from the start of the processes). `worker CPU/event` is the workers' CPU time (user and
system) per event while timed: steadier than the rates on a machine shared with other work.

`--stored N` puts N event ids in the idempotency index first, as in a database holding N
events: random ids (`--ids v4`, the default) land anywhere in it, time-ordered ones
(`--ids v7`, what devices.client sends) at its end; the difference shows once the index
outgrows the database's shared_buffers.

The workers publish receipts (`--receipts on`, the default), and a subscriber standing for
the devices takes them at QoS 1, so the broker delivers them as in production;
`--receipts off` measures the same without (LOOPTRACK_INGEST_RECEIPTS=false).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from uuid6 import uuid7

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from looptrack.local_services import LocalMosquitto  # noqa: E402
from schemas.migrations import migrate  # noqa: E402

PG_SERVER = os.environ.get("LOOPTRACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DEVICES = [f"rvm-{i:03d}" for i in range(50)]
GTINS = ["07038010001239", "07038010002342", "07310865004703", "07038010009990"]
BATCH = 500
# The measurements, by the name --only takes.
RUNS = {
    "batched": f"MQTT batched ({BATCH}/msg), 1 worker",
    "batched2": f"MQTT batched ({BATCH}/msg), N workers",
    "serial": f"MQTT batched ({BATCH}/msg), serialised, 1 w.",
    "serial2": f"MQTT batched ({BATCH}/msg), serialised, N w.",
    "single": "MQTT single (1/msg), 1 worker",
    "single2": "MQTT single (1/msg), N workers",
    "live": "MQTT single, live publisher, 1 worker",
}


def gtin13(gtin14: str) -> str:
    return gtin14[1:]


# How the devices name events (--ids): random (version 4) or time-ordered (version 7, as
# devices.client does and the payload schema recommends).
ID_KINDS: dict[str, Callable[[], uuid.UUID]] = {"v4": uuid.uuid4, "v7": uuid7}


def make_events(
    n: int, new_id: Callable[[], uuid.UUID], serials: str | None = None
) -> list[dict[str, Any]]:
    """n events over the last hour; with `serials` (a prefix), each group of four is one
    serialised item's sold, returned, duplicate return and reject, so the reuse
    aggregates have trips and duplicate returns to keep."""
    base = datetime.now(UTC) - timedelta(hours=1)
    return [
        {
            "event_id": str(new_id()),
            "ts": (base + timedelta(milliseconds=i)).isoformat(),
            "type": ("sold", "returned", "returned", "rejected")[i % 4],
            # A serialised item keeps its GTIN: its four events are one item's.
            "gtin": gtin13(GTINS[(i // 4 if serials else i) % len(GTINS)]),
            "seq": i // len(DEVICES),
            **({"reason": "damaged"} if i % 4 == 3 else {}),
            **({"attrs": {"weight_g": 23.5}} if i % 10 == 0 else {}),
            **({"serial": f"{serials}{i // 4}"} if serials else {}),
        }
        for i in range(n)
    ]


def new_database() -> tuple[str, str]:
    name = f"looptrack_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(PG_SERVER, dbname=name)
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO packaging_types (id, name, material, deposit)"
            " VALUES ('p', 'P', 'PET', 200)"
        )
        for gtin in GTINS:
            conn.execute("INSERT INTO products VALUES (%s, 'p', 'b', 'n')", (gtin,), prepare=False)
        conn.execute("INSERT INTO sites (id, name, kind) VALUES ('s', 'S', 'shop')")
        for device in DEVICES:
            conn.execute(
                "INSERT INTO devices (id, site_id, kind) VALUES (%s, 's', 'rvm')", (device,)
            )
    return name, url


def prefill_event_ids(url: str, n: int, kind: str) -> None:
    """`n` ids of the last 300 days in `event_ids`, of the kind the runs send: random, or
    time-ordered (their first 48 bits the time in ms, as version 7). The primary key is
    built once after them (inserting them one by one into it takes many times longer)."""
    ids = {
        "v4": "gen_random_uuid()",
        "v7": "(lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0')"
        " || substr(replace(gen_random_uuid()::text, '-', ''), 13))::uuid",
    }[kind]
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("ALTER TABLE event_ids DROP CONSTRAINT event_ids_pkey")
        conn.execute(
            sql.SQL(
                "INSERT INTO event_ids (event_id, ts) SELECT {}, t FROM (SELECT now()"
                " - random() * interval '300 days' AS t FROM generate_series(1, %s)) s"
            ).format(sql.SQL(ids)),
            (n,),
        )
        conn.execute("ALTER TABLE event_ids ADD CONSTRAINT event_ids_pkey PRIMARY KEY (event_id)")
        conn.execute("VACUUM ANALYZE event_ids")
        row = conn.execute(
            "SELECT pg_size_pretty(pg_relation_size('event_ids_pkey')),"
            " current_setting('shared_buffers')"
        ).fetchone()
    assert row is not None
    print(
        f"event_ids: {n:,} ids stored first ({time.perf_counter() - started:.0f} s), its"
        f" index {row[0]}, shared_buffers {row[1]}",
        flush=True,
    )


def drop_database(name: str) -> None:
    for conn in _POLLERS.values():
        conn.close()
    _POLLERS.clear()
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# One autocommit connection per database for the polling below: a connection per poll
# (50 a second) cost the machine being measured a fork and a login each, about 4 ms.
_POLLERS: dict[str, psycopg.Connection[Any]] = {}


def events_count(url: str) -> int:
    """Events stored so far, from the workers' counters: polling count(*) over the events
    table would itself load the database being measured."""
    conn = _POLLERS.get(url)
    if conn is None:
        conn = _POLLERS[url] = psycopg.connect(url, autocommit=True)
    row = conn.execute("SELECT coalesce(sum(stored), 0) FROM ingest_counters").fetchone()
    return int(row[0]) if row else 0


def bare_copy(url: str, events: list[dict[str, Any]]) -> float:
    """events/s of one COPY of the same rows straight into `events`."""
    now = datetime.now(UTC)
    rows = [
        (
            uuid.UUID(e["event_id"]),
            datetime.fromisoformat(e["ts"]),
            now,
            DEVICES[i % len(DEVICES)],
            "s",
            e["type"],
            "0" + e["gtin"],
            None,
            1,
            e["seq"],
            e.get("reason"),
            None,
            Jsonb(e["attrs"]) if "attrs" in e else None,
        )
        for i, e in enumerate(events)
    ]
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY events (event_id, ts, received_at, device_id, site_id, type, item_class,"
            " serial, qty, seq, reason, stream, attrs) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE events")
        conn.commit()
    return len(rows) / elapsed


# Set from --receipts: whether the workers publish receipts.
RECEIPTS = {"on": "true", "off": "false"}


def env_for(url: str, broker: LocalMosquitto, root: str, client_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPTRACK_")}
    env.update(
        LOOPTRACK_INGEST_RECEIPTS=os.environ["BENCH_RECEIPTS"],
        LOOPTRACK_DATABASE_URL=url,
        LOOPTRACK_MQTT_URL=broker.url,
        LOOPTRACK_TOPIC_ROOT=root,
        LOOPTRACK_MQTT_GROUP="bench",
        LOOPTRACK_INGEST_CLIENT_ID=client_id,
        PYTHONPATH=str(ROOT),
    )
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            # BENCH_PROFILE=DIR writes a cProfile of each worker run into DIR.
            profile = os.environ.get("BENCH_PROFILE")
            prefix = ["-m", "cProfile", "-o", f"{profile}/{log.stem}.prof"] if profile else []
            self.process = subprocess.Popen(
                [sys.executable, *prefix, "-m", "looptrack", "ingest"],
                env=env,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 30
        while "subscribed group=" not in log.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"worker did not subscribe:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """CPU time the process has used so far (user + system, s)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def publish(
    env: dict[str, str], workdir: Path, messages: list[tuple[str, Any]]
) -> subprocess.Popen[bytes]:
    path = workdir / f"pub-{uuid.uuid4().hex[:6]}.jsonl"
    with path.open("w") as out:
        for device, payload in messages:
            out.write(json.dumps({"device": device, "payload": payload}) + "\n")
    return subprocess.Popen(
        [sys.executable, "-m", "devices.replay", "--no-status", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
    )


class ReceiptTaker:
    """Stands for the devices: takes every receipt of the bench's topic roots at QoS 1."""

    def __init__(self, broker: LocalMosquitto) -> None:
        self.messages = 0
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_message = self._count
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.subscribe("bench/+/devices/+/receipts", qos=1)
        self.client = client

    def _count(self, _c: Any, _u: Any, _m: Any) -> None:
        self.messages += 1

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(url: str, target: int, timeout_s: float = 600) -> float:
    deadline = time.monotonic() + timeout_s
    while (n := events_count(url)) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n} of {target} events stored")
        time.sleep(0.02)
    return time.perf_counter()


@dataclass(frozen=True)
class Run:
    rate: float  # events/s: a backlog from the workers' subscription (their capacity)
    with_start: float  # events/s from the start of the worker processes
    rss_mb: float  # the largest peak resident memory of a worker
    cpu_us: float  # the workers' CPU time per event stored while timed (µs)


def backlog_run(
    url: str,
    broker: LocalMosquitto,
    workdir: Path,
    messages: list[tuple[str, Any]],
    tag: str,
    workers: int = 1,
) -> Run:
    """Queue `messages` for stopped workers' sessions, then time the workers draining them
    from the moment every worker has subscribed; also from the start of their processes
    (with the interpreter's start, about half a second)."""
    n = sum(len(p["events"]) if "events" in p else 1 for _, p in messages)
    envs = [env_for(url, broker, f"bench/{tag}", f"bench-{tag}-{i}") for i in range(workers)]
    before = events_count(url)
    for i, env in enumerate(envs):  # creates the persistent sessions
        WorkerProcess(env, workdir / f"{tag}-{i}-setup.log").stop()
    publisher = publish(envs[0], workdir, messages)
    if publisher.wait(600) != 0:
        raise RuntimeError("publisher failed")
    started = time.perf_counter()
    running = [WorkerProcess(env, workdir / f"{tag}-{i}.log") for i, env in enumerate(envs)]
    ready = time.perf_counter()
    cpu_at_ready = sum(worker.cpu_s() for worker in running)
    timed = n - (events_count(url) - before)
    done = wait_for(url, before + n)
    cpu = sum(worker.cpu_s() for worker in running) - cpu_at_ready
    rss = max(worker.peak_rss_mb() for worker in running)
    for worker in running:
        worker.stop()
    return Run(timed / (done - ready), n / (done - started), rss, cpu / timed * 1e6)


def live_run(
    url: str, broker: LocalMosquitto, workdir: Path, messages: list[tuple[str, Any]], n: int
) -> Run:
    env = env_for(url, broker, "bench/live", "bench-live")
    before = events_count(url)
    worker = WorkerProcess(env, workdir / "live.log")
    cpu_at_start = worker.cpu_s()
    started = time.perf_counter()
    publisher = publish(env, workdir, messages)
    done = wait_for(url, before + n)
    publisher.wait(60)
    cpu = worker.cpu_s() - cpu_at_start
    rss = worker.peak_rss_mb()
    worker.stop()
    rate = n / (done - started)  # the worker was running before the publisher
    return Run(rate, rate, rss, cpu / n * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--batched", type=int, default=200_000, help="events sent 500 per message")
    parser.add_argument("--single", type=int, default=50_000, help="events sent one per message")
    parser.add_argument(
        "--receipts", choices=sorted(RECEIPTS), default="on", help="workers publish receipts"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="workers of the batched2, serial2 and single2 runs"
    )
    parser.add_argument(
        "--ids",
        choices=sorted(ID_KINDS),
        default="v4",
        help="event ids the devices send: random (v4, the default) or time-ordered (v7)",
    )
    parser.add_argument(
        "--stored",
        type=int,
        default=0,
        help="event ids stored before the runs: the idempotency index (event_ids) at the "
        "size it has in a database holding that many events",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated runs to measure (batched, batched2, serial, serial2, single, "
        "single2, live); all by default. The bare COPY always runs: the ratios divide by it",
    )
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    unknown = only - set(RUNS)
    if unknown:
        parser.error(f"unknown runs: {', '.join(sorted(unknown))} (known: {', '.join(RUNS)})")
    os.environ["BENCH_RECEIPTS"] = RECEIPTS[args.receipts]
    new_id = ID_KINDS[args.ids]

    def batched_messages(serials: str | None = None) -> list[tuple[str, Any]]:
        events = make_events(args.batched, new_id, serials)
        return [
            (DEVICES[(i // BATCH) % len(DEVICES)], {"events": events[i : i + BATCH]})
            for i in range(0, len(events), BATCH)
        ]

    def single_messages() -> list[tuple[str, Any]]:
        events = make_events(args.single, new_id)
        return [(DEVICES[i % len(DEVICES)], e) for i, e in enumerate(events)]

    copy_rows = make_events(args.batched, new_id)
    name, url = new_database()
    if args.stored:
        prefill_event_ids(url, args.stored, args.ids)
    with tempfile.TemporaryDirectory(prefix="looptrack-bench-") as tmp:
        workdir = Path(tmp)
        broker = LocalMosquitto(workdir / "mosquitto")
        broker.start()
        devices = ReceiptTaker(broker) if args.receipts == "on" else None
        try:
            copy_rate = bare_copy(url, copy_rows)
            runs: dict[str, Callable[[], Run]] = {
                "batched": lambda: backlog_run(url, broker, workdir, batched_messages(), "batched"),
                "batched2": lambda: backlog_run(
                    url, broker, workdir, batched_messages(), "batched2", workers=args.workers
                ),
                "serial": lambda: backlog_run(
                    url, broker, workdir, batched_messages("S"), "serial"
                ),
                "serial2": lambda: backlog_run(
                    url, broker, workdir, batched_messages("T"), "serial2", workers=args.workers
                ),
                "single": lambda: backlog_run(url, broker, workdir, single_messages(), "single"),
                "single2": lambda: backlog_run(
                    url, broker, workdir, single_messages(), "single2", workers=args.workers
                ),
                "live": lambda: live_run(url, broker, workdir, single_messages(), args.single),
            }
            results = [
                (RUNS[key].replace("N w", f"{args.workers} w"), run())
                for key, run in runs.items()
                if not only or key in only
            ]
        finally:
            if devices is not None:
                devices.stop()
            broker.stop()
            drop_database(name)

    print(
        f"machine: {os.cpu_count()} CPUs; broker, database, workers and publisher on this host; "
        f"{args.batched:,} batched / {args.single:,} single events per run; "
        f"receipts {args.receipts}; event ids {args.ids}"
        + (f" ({devices.messages:,} receipt messages taken)" if devices is not None else "")
    )
    print(
        f"{'measurement':<42} {'events/s':>10} {'vs COPY':>8} {'peak RSS':>10} {'incl. start':>12}"
    )
    print(f"{'bare COPY of the same rows into events':<42} {copy_rate:>10,.0f} {'1.00':>8}")
    for label, run in results:
        print(
            f"{label:<42} {run.rate:>10,.0f} {run.rate / copy_rate:>8.2f} {run.rss_mb:>7.0f} MB"
            f" {run.with_start:>12,.0f} {run.cpu_us:>14.1f} µs"
        )
    print("targets (SPEC §10): batched >= 50,000/s, single >= 10,000/s, worker RSS < 200 MB")


if __name__ == "__main__":
    main()
