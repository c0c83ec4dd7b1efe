"""`GET /v1/stats/return-rates` latency for a year, daily, as the event count grows.

    python bench/stats.py [--steps 1,5,10,20] [--requests 40]

Loads events straight into the tables by server-side SQL with the rollups the worker
would have kept (bench/load.py; not through MQTT: this measures reading), then times the
real API over HTTP for a year of daily buckets in the deployment's zone (day rollups):
all packaging types, one brand, one site, and monthly; then in another zone (hourly
rollup) and in another zone with a site filter (15-minute rollup). Steps are cumulative
millions of events. Prints p50/p95 per step; the target is p95 < 50 ms. bench/scale.py
times every statistic and page this way up to 100 M events.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import (  # noqa: E402
    YEAR,
    ZONE,
    create_database,
    drop_database,
    load_events,
    load_registry,
)
from looptrack.local_services import free_port, port_open  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402


def return_rate_queries() -> dict[str, str]:
    """The shapes of a year of return rates timed, by label: day rollups (the deployment's
    zone, whole days: the target's path), hourly (another whole-hour zone) and quarter
    hours (another zone with a site filter)."""
    year = f"from={YEAR[0]}&to={YEAR[1]}&bucket=day"
    return {
        "all types": f"{year}&tz={ZONE}",
        "one brand": f"{year}&tz={ZONE}&brand=brand-1",
        "one site": f"{year}&tz={ZONE}&site_id=site-7",
        "monthly": f"from={YEAR[0]}&to={YEAR[1]}&bucket=month&tz={ZONE}",
        # Another zone than the deployment's: the hourly rollup; with a site filter,
        # the 15-minute one.
        "UTC (hourly)": f"{year}&tz=UTC",
        "UTC, one site (15-min)": f"{year}&tz=UTC&site_id=site-7",
    }


def timed_requests(port: int, key: str, query: str, n: int) -> tuple[float, float]:
    """p50 and p95 in ms of n requests (after 3 warm-up requests)."""
    url = f"http://127.0.0.1:{port}/v1/stats/return-rates?{query}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    times = []
    for i in range(n + 3):
        started = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            response.read()
        if i >= 3:
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", default="1,5,10,20", help="cumulative millions of events")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    steps = [int(float(s) * 1_000_000) for s in args.steps.split(",")]

    name = f"looptrack_bench_stats_{uuid.uuid4().hex[:8]}"
    port = free_port()
    api = None
    try:
        url = create_database(name)
        # The crates of bench/pages.py are not needed here.
        load_registry(url, items=0)
        with psycopg.connect(url, autocommit=True) as conn:
            key = create_key(conn, Role.ADMIN, "bench")
        env = {
            **os.environ,
            "LOOPTRACK_DATABASE_URL": url,
            "LOOPTRACK_TIMEZONE": ZONE,
            "PYTHONPATH": str(ROOT),
        }
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "looptrack",
                "--log-level",
                "WARNING",
                "api",
                "--port",
                str(port),
            ],
            env=env,
        )
        while not port_open(port):
            time.sleep(0.1)
        queries = return_rate_queries()
        print(f"{'events':>12} {'15-min rows':>12} {'day rows':>9} {'load s':>7}  " + "  ".join(
            f"{label + ' p50/p95 ms':>24}" for label in queries))  # fmt: skip
        loaded = 0
        for target in steps:
            started = time.perf_counter()
            load_events(url, target, progress=lambda _: None)
            with psycopg.connect(url, autocommit=True) as conn:
                rollup_rows = conn.execute(
                    "SELECT (SELECT count(*) FROM event_counts_15m),"
                    " (SELECT count(*) FROM return_counts_daily)"
                ).fetchone()
            load_s = time.perf_counter() - started
            loaded = target
            cells = []
            for label, query in queries.items():
                # The 15-minute path takes seconds per request at millions of events.
                n = min(args.requests, 3) if "15-min" in label else args.requests
                p50, p95 = timed_requests(port, key, query, n)
                cells.append(f"{p50:>11.1f} / {p95:>9.1f}")
            quarter_rows, day_rows = rollup_rows or (0, 0)
            print(f"{loaded:>12,} {quarter_rows:>12,} {day_rows:>9,} {load_s:>7.0f}  "
                  + "  ".join(f"{c:>24}" for c in cells), flush=True)  # fmt: skip
        print("target (SPEC §10): p95 < 50 ms for a year, daily, over 100 million events")
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        drop_database(name)


if __name__ == "__main__":
    main()
