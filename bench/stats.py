"""`GET /v1/stats/return-rates` latency for a year, daily, as the event count grows.

    python bench/stats.py [--steps 1,5,10,20] [--requests 40]

Loads events straight into the tables (SQL, not through MQTT: this measures reading),
builds the rollups the worker would have kept, then times the real API over HTTP for a
year of daily buckets in the deployment's zone (day rollups): all packaging types, one
brand, one site, and monthly; then in another zone (hourly rollup) and in another zone
with a site filter (15-minute rollup). Steps are cumulative millions of events. Prints
p50/p95 per step; the target is p95 < 50 ms.
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
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from looptrack.local_services import free_port, port_open  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402
from schemas.migrations import migrate  # noqa: E402

PG_SERVER = os.environ.get("LOOPTRACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SITES = 200
DEVICES_PER_SITE = 2
PRODUCTS = 200  # over 10 packaging types and 20 brands (two brands per type)
YEAR = ("2025-01-01", "2026-01-01")

REGISTRY = [
    """INSERT INTO packaging_types (id, name, material, deposit, weight_g)
       SELECT 'type-' || t, 'Type ' || t, 'PET', 200, 20 + t FROM generate_series(0, 9) t""",
    """INSERT INTO products (gtin, packaging_type_id, brand, name)
       SELECT lpad((7038010000000 + p)::text, 14, '0'), 'type-' || (p %% 10),
              'brand-' || (p %% 20), 'Product ' || p
       FROM generate_series(0, %(products)s - 1) p""",
    """INSERT INTO sites (id, name, kind) SELECT 'site-' || s, 'Site ' || s, 'shop'
       FROM generate_series(0, %(sites)s - 1) s""",
    """INSERT INTO devices (id, site_id, kind)
       SELECT 'rvm-' || d, 'site-' || (d / %(per_site)s), 'rvm'
       FROM generate_series(0, %(sites)s * %(per_site)s - 1) d""",
]

# Events uniformly over the year; 45 % sold, 45 % returned, 10 % rejected (for one of
# the six reasons).
LOAD = """
INSERT INTO events (event_id, ts, received_at, device_id, site_id, type, gtin, qty, reason)
SELECT gen_random_uuid(), ts, ts, 'rvm-' || d, 'site-' || (d / %(per_site)s),
       CASE WHEN r < 0.45 THEN 'sold' WHEN r < 0.9 THEN 'returned' ELSE 'rejected' END,
       lpad((7038010000000 + (random() * (%(products)s - 1))::int)::text, 14, '0'), 1,
       CASE WHEN r >= 0.9 THEN (ARRAY['unreadable', 'unknown_product', 'damaged',
                                      'not_empty', 'duplicate', 'other'])[1 + d %% 6] END
FROM (SELECT TIMESTAMPTZ '2025-01-01 00:00+00' + random() * INTERVAL '365 days' AS ts,
             (random() * (%(sites)s * %(per_site)s - 1))::int AS d, random() AS r
      FROM generate_series(1, %(n)s)) g
"""

# The rollups the worker keeps, rebuilt from the events; day rollups in ZONE.
ZONE = "Europe/Oslo"
ROLLUP = [
    "TRUNCATE event_counts_15m",
    """INSERT INTO event_counts_15m (bucket, site_id, gtin, type, qty, events)
       SELECT date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00+00'), site_id, gtin,
              type, sum(qty), count(*)
       FROM events GROUP BY 1, 2, 3, 4""",
    "SELECT rebuild_return_counts_daily()",
    "SELECT rebuild_reject_counts_daily()",
    "SELECT rebuild_return_counts_hourly()",
    "VACUUM ANALYZE event_counts_15m",
    "VACUUM ANALYZE return_counts_daily",
    "VACUUM ANALYZE site_return_counts_daily",
    "VACUUM ANALYZE return_counts_hourly",
]


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
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(PG_SERVER, dbname=name)
    port = free_port()
    api = None
    try:
        migrate(url, timezone=ZONE)
        params = {"products": PRODUCTS, "sites": SITES, "per_site": DEVICES_PER_SITE}
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in REGISTRY:
                conn.execute(statement, params)
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
        year = f"from={YEAR[0]}&to={YEAR[1]}&bucket=day"
        queries = {
            "all types": f"{year}&tz={ZONE}",
            "one brand": f"{year}&tz={ZONE}&brand=brand-1",
            "one site": f"{year}&tz={ZONE}&site_id=site-7",
            "monthly": f"from={YEAR[0]}&to={YEAR[1]}&bucket=month&tz={ZONE}",
            # Another zone than the deployment's: the hourly rollup; with a site filter,
            # the 15-minute one.
            "UTC (hourly)": f"{year}&tz=UTC",
            "UTC, one site (15-min)": f"{year}&tz=UTC&site_id=site-7",
        }
        print(f"{'events':>12} {'15-min rows':>12} {'day rows':>9} {'load s':>7}  " + "  ".join(
            f"{label + ' p50/p95 ms':>24}" for label in queries))  # fmt: skip
        loaded = 0
        for target in steps:
            started = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(LOAD, {**params, "n": target - loaded})
                for statement in ROLLUP:
                    conn.execute(statement)
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
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
