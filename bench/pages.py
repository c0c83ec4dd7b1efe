"""Server time of the pages for people (issue 7: under 300 ms with 20 M events loaded).

    python bench/pages.py [--millions 20] [--requests 20] [--items 20000]

Loads events straight into the tables as bench/stats.py does (its registry, its load and
its rollups: 200 sites, 400 RVMs, 200 products of 20 brands, events over 2025), plus
`--items` serialised reusable crates with a trip history (filled → returned loops over
the year). Then it starts the real API and times, over HTTP on this host, each page a
person opens: the operator dashboard for the default 30 days and for the year by day and
week, a brand's portal, the CSV of a year by day, and the two reuse pages (which read the
per-item aggregates the ingest keeps; for events loaded straight into the table they are
built by migration 0010's backfill, as for a database upgraded with events in it).
Prints p50/p95/max in ms per page; every page must stay under 300 ms at p95.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import (  # noqa: E402
    DEVICES_PER_SITE,
    LOAD,
    PG_SERVER,
    PRODUCTS,
    REGISTRY,
    ROLLUP,
    SITES,
    YEAR,
    ZONE,
)
from looptrack.local_services import free_port, port_open  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402
from schemas.migrations import migrate  # noqa: E402

TARGET_MS = 300.0
# Reusable crates of brand-1: a serialised product with a trip history.
CRATE_TYPE, CRATE_GTIN, CRATE_BRAND = "crate", "07038010099990", "brand-1"
ITEMS_SQL = [
    """INSERT INTO packaging_types (id, name, material, reusable, target_trips, deposit, weight_g)
       VALUES ('crate', 'Crate 24', 'HDPE', true, 50, 0, 1600)""",
    """INSERT INTO products (gtin, packaging_type_id, brand, name)
       VALUES ('07038010099990', 'crate', 'brand-1', 'Crate 24')""",
    """INSERT INTO items (gtin, serial, commissioned_at)
       SELECT '07038010099990', 'C' || i, TIMESTAMPTZ '2025-01-01 00:00+00'
       FROM generate_series(1, %(items)s) i""",
    # Each crate: trips of about 12 days (filled, then returned), fewer for some.
    """INSERT INTO events (event_id, ts, received_at, device_id, site_id, type, gtin, serial, qty)
       SELECT gen_random_uuid(), ts, ts, 'rvm-' || (i %% 400), 'site-' || (i %% 400 / 2),
              kind, '07038010099990', 'C' || i, 1
       FROM generate_series(1, %(items)s) i,
            generate_series(0, (i %% 25)) t,
            LATERAL (VALUES ('filled', TIMESTAMPTZ '2025-01-02 00:00+00' + t * INTERVAL '13 days'),
                            ('returned', TIMESTAMPTZ '2025-01-14 00:00+00' + t * INTERVAL '13 days')
                    ) AS v (kind, ts)""",
]


def page_times(port: int, key: str, path: str, n: int) -> tuple[float, float, float]:
    """p50, p95 and max in ms of n GETs of `path` (after 3 warm-up requests), over one
    keep-alive connection with the login cookie."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": f"looptrack_key={key}", "Accept": "text/html"}
    times = []
    try:
        for i in range(n + 3):
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}: {body[:300]!r}")
            if i >= 3:
                times.append(elapsed)
    finally:
        connection.close()
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--millions", type=float, default=20, help="events loaded (millions)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--items", type=int, default=20_000, help="serialised crates")
    args = parser.parse_args()

    name = f"looptrack_bench_pages_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(PG_SERVER, dbname=name)
    port = free_port()
    api = None
    try:
        migrate(url, timezone=ZONE)
        params = {"products": PRODUCTS, "sites": SITES, "per_site": DEVICES_PER_SITE}
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in REGISTRY:
                conn.execute(statement, params)
            for statement in ITEMS_SQL:
                conn.execute(statement, {"items": args.items})
            conn.execute(LOAD, {**params, "n": int(args.millions * 1_000_000)})
            for statement in ROLLUP:
                conn.execute(statement)
            # The reuse aggregates of the loaded events, by the migration that adds them.
            conn.execute("DROP TABLE item_loops, item_trips, duplicate_returns")
            conn.execute("DELETE FROM schema_migrations WHERE version = '0010_item_loops'")
        migrate(url, timezone=ZONE)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            operator = create_key(conn, Role.OPERATOR, "bench")
            brand = create_key(conn, Role.BRAND, "bench", brand=CRATE_BRAND)
            events, loops, trips, rejects = conn.execute(
                "SELECT (SELECT count(*) FROM events),"
                " (SELECT count(*) FROM events WHERE serial IS NOT NULL),"
                " (SELECT count(*) FROM item_trips), (SELECT count(*) FROM reject_counts_daily)"
            ).fetchone() or (0, 0, 0, 0)
        load_s = time.perf_counter() - started
        env = {
            **os.environ,
            "LOOPTRACK_DATABASE_URL": url,
            "LOOPTRACK_TIMEZONE": ZONE,
            "PYTHONPATH": str(ROOT),
        }
        api = subprocess.Popen(
            [sys.executable, "-m", "looptrack", "--log-level", "WARNING", "api",
             "--port", str(port)],
            env=env,
        )  # fmt: skip
        while not port_open(port):
            time.sleep(0.1)
        year = {"from": YEAR[0], "to": YEAR[1]}
        by_day = urlencode({**year, "bucket": "day"})
        # (page, key, path, requests)
        pages = [
            ("dashboard, last 30 days", operator, "/dashboard", args.requests),
            ("dashboard, 2025 by day", operator, f"/dashboard?{by_day}", args.requests),
            ("dashboard, 2025 by week", operator,
             "/dashboard?" + urlencode({**year, "bucket": "week"}), args.requests),
            ("portal, 2025 by month", brand,
             "/portal?" + urlencode({**year, "bucket": "month"}), args.requests),
            ("portal, serial look-up", brand, "/portal?serial=C4242", args.requests),
            ("CSV, 2025 by day", operator, f"/dashboard/return-rates.csv?{by_day}", args.requests),
            ("reuse page, operator", operator, "/dashboard/reuse", args.requests),
            ("reuse page, brand", brand, "/portal/reuse", args.requests),
        ]  # fmt: skip
        print(f"loaded {events:,} events ({loops:,} of {args.items:,} serialised crates, "
              f"{trips:,} trips; {rejects:,} rows of rejects by day, GTIN and reason) in "
              f"{load_s:.0f} s")  # fmt: skip
        print(f"{'page':<28} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst = {}
        for label, key, path, n in pages:
            p50, p95, most = page_times(port, key, path, n)
            worst[label] = p95
            print(f"{label:<28} {n:>8} {p50:>8.1f} {p95:>8.1f} {most:>8.1f}", flush=True)
        slow = {label: p95 for label, p95 in worst.items() if p95 >= TARGET_MS}
        verdict = "PASS" if not slow else "FAIL"
        print(f"verdict: {verdict}: target p95 < {TARGET_MS:.0f} ms; over it: "
              + (", ".join(f"{k} ({v:,.0f} ms)" for k, v in slow.items()) or "none"))  # fmt: skip
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
