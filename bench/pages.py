"""Server time of the pages for people (issue 7: under 300 ms with 20 M events loaded).

    python bench/pages.py [--millions 20] [--requests 20] [--items 20000] [--keep]
    python bench/pages.py --database looptrack_bench_pages_1a2b3c4d  # a kept load, again

Loads events straight into the tables as bench/stats.py does (its registry, its load and
its rollups: 200 sites, 400 RVMs, 200 products of 20 brands, 4 sorting sites whose
weighed sorting counts are 3 % of the events, over the last 12 whole months), plus
`--items` serialised reusable crates with a trip history (filled → sold → returned
loops over the year). Then it starts the real API and times, over HTTP on this host,
each page a person opens: the operator dashboard for the default 30 days and for the
year by day and week, a brand's portal, the CSV of a year by day, the two reuse pages
(which read the per-item aggregates the ingest keeps; for events loaded straight into
the table they are built by migration 0010's backfill, as for a database upgraded with
events in it), the material flows pages (issue 19: the operator's with its targets, a
brand's), and the API requests behind them: /v1/stats/materials for the year by day and
month (day rollups), in UTC (hourly rollup, as for any whole-hour zone but the rollup
zone) for all and for a brand, and /v1/stats/targets. Prints p50/p95/max in ms per
request; every one must stay under 300 ms at p95, except two kinds of request reported
only: a year of every brand's material flows in UTC (the hourly rollup, whose rows grow
with the catalogue times the hours), and in a zone with a :30 offset (Asia/Kolkata), which reads
quarter hours.
A page that answers 404 (not deployed yet) is reported as not measured.
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
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import (  # noqa: E402
    LOAD_PARAMS,
    PG_SERVER,
    REGISTRY,
    ROLLUP,
    YEAR,
    ZONE,
    load_events,
)
from looptrack.local_services import free_port, port_open  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402
from schemas.migrations import migrate  # noqa: E402

TARGET_MS = 300.0
# Requests of a path that reads a year of quarter hours: seconds each at 20 M events.
QUARTER_HOUR_REQUESTS = 5
# Reusable crates of brand-1: a serialised product with a trip history.
CRATE_TYPE, CRATE_GTIN, CRATE_BRAND = "crate", "07038010099990", "brand-1"
ITEMS_SQL = [
    """INSERT INTO packaging_types (id, name, material, reusable, target_trips, deposit, weight_g)
       VALUES ('crate', 'Crate 24', 'HDPE', true, 50, 0, 1600)""",
    """INSERT INTO products (gtin, packaging_type_id, brand, name)
       VALUES ('07038010099990', 'crate', 'brand-1', 'Crate 24')""",
    "SELECT declare_materials(ARRAY['07038010099990'], NULL)",
    """INSERT INTO items (gtin, serial, commissioned_at)
       SELECT '07038010099990', 'C' || i, %(from)s FROM generate_series(1, %(items)s) i""",
    # Each crate: trips of 13 days (filled, sold, then returned), fewer for some.
    """INSERT INTO events (event_id, ts, received_at, device_id, site_id, type, gtin, serial, qty)
       SELECT gen_random_uuid(), ts, ts, 'rvm-' || (i %% 400), 'site-' || (i %% 400 / 2),
              kind, '07038010099990', 'C' || i, 1
       FROM generate_series(1, %(items)s) i,
            generate_series(0, (i %% 25)) t,
            LATERAL (VALUES ('filled', %(from)s + (1 + t * 13) * INTERVAL '1 day'),
                            ('sold', %(from)s + (4 + t * 13) * INTERVAL '1 day'),
                            ('returned', %(from)s + (13 + t * 13) * INTERVAL '1 day')
                    ) AS v (kind, ts)""",
]


def request_times(
    port: int, headers: dict[str, str], path: str, n: int
) -> tuple[float, float, float] | int:
    """p50, p95 and max in ms of n GETs of `path` (after 3 warm-up requests), over one
    keep-alive connection; the HTTP status instead when `path` is not found (404)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    times = []
    try:
        for i in range(n + 3):
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status == 404:
                return response.status
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}: {body[:300]!r}")
            if i >= 3:
                times.append(elapsed)
    finally:
        connection.close()
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1]


def load(url: str, millions: float, items: int) -> None:
    """The registry, the events and the rollups of bench/stats.py, the crates and their
    trips, and the reuse aggregates of it all."""
    start = datetime.fromisoformat(YEAR[0]).replace(tzinfo=ZoneInfo(ZONE))
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in REGISTRY:
            conn.execute(statement, LOAD_PARAMS)
        for statement in ITEMS_SQL:
            conn.execute(statement, {"items": items, "from": start})
        load_events(conn, int(millions * 1_000_000))
        for statement in ROLLUP:
            conn.execute(statement)
        # The reuse aggregates of the loaded events, by the migration that adds them.
        conn.execute("DROP TABLE item_loops, item_trips, duplicate_returns")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0010_item_loops'")
    migrate(url, timezone=ZONE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def describe(url: str, items: int) -> str:
    """What the database holds, in a few lines."""
    with psycopg.connect(url) as conn:
        events, loops, trips, rejects = conn.execute(
            "SELECT (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM events WHERE serial IS NOT NULL),"
            " (SELECT count(*) FROM item_trips), (SELECT count(*) FROM reject_counts_daily)"
        ).fetchone() or (0, 0, 0, 0)
        sorted_events, sorted_qty, weighed, streams = conn.execute(
            "SELECT count(*), coalesce(sum(qty), 0), count(weight_g), count(DISTINCT stream)"
            " FROM events WHERE type = 'sorted'"
        ).fetchone() or (0, 0, 0, 0)
        returned_qty, declarations, gtins, quarter_rows, hour_rows, day_rows = conn.execute(
            "SELECT (SELECT coalesce(sum(qty), 0) FROM events WHERE type = 'returned'),"
            " (SELECT count(*) FROM material_declarations),"
            " (SELECT count(DISTINCT gtin) FROM material_declarations),"
            " (SELECT count(*) FROM material_counts_15m),"
            " (SELECT count(*) FROM material_grams_hourly),"
            " (SELECT count(*) FROM material_grams_daily)"
        ).fetchone() or (0, 0, 0, 0, 0, 0)
    return (
        f"{events:,} events over {YEAR[0]} to {YEAR[1]} ({loops:,} of {items:,} serialised"
        f" crates, {trips:,} trips; {rejects:,} rows of rejects by day, GTIN and reason)\n"
        f"{sorted_events:,} sorted events ({sorted_events / max(events, 1):.1%}) of"
        f" {sorted_qty:,} containers ({returned_qty:,} returned) into {streams} streams,"
        f" {weighed / max(sorted_events, 1):.0%} weighed; {declarations:,} declarations of"
        f" {gtins:,} products; material rollups: {quarter_rows:,} quarter-hour rows"
        f" (per GTIN), {hour_rows:,} hour and {day_rows:,} day rows (weighed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--millions", type=float, default=20, help="events loaded (millions)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--items", type=int, default=20_000, help="serialised crates")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--database", help="time a database a --keep run loaded; no load")
    args = parser.parse_args()

    name = args.database or f"looptrack_bench_pages_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(PG_SERVER, dbname=name)
    port = free_port()
    api = None
    try:
        started = time.perf_counter()
        if args.database is None:
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            migrate(url, timezone=ZONE)
            load(url, args.millions, args.items)
        load_s = time.perf_counter() - started
        with psycopg.connect(url, autocommit=True) as conn:
            operator = create_key(conn, Role.OPERATOR, "bench")
            brand = create_key(conn, Role.BRAND, "bench", brand=CRATE_BRAND)
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
        by_month = urlencode({**year, "bucket": "month"})
        # People's pages carry the login cookie, API clients the key.
        operator_page = {"Cookie": f"looptrack_key={operator}", "Accept": "text/html"}
        brand_page = {"Cookie": f"looptrack_key={brand}", "Accept": "text/html"}
        operator_api = {"Authorization": f"Bearer {operator}"}
        brand_api = {"Authorization": f"Bearer {brand}"}
        materials = "/v1/stats/materials?"
        # (label, headers, path, requests)
        requests = [
            ("dashboard, last 30 days", operator_page, "/dashboard", args.requests),
            ("dashboard, year by day", operator_page, f"/dashboard?{by_day}", args.requests),
            ("dashboard, year by week", operator_page,
             "/dashboard?" + urlencode({**year, "bucket": "week"}), args.requests),
            ("portal, year by month", brand_page, f"/portal?{by_month}", args.requests),
            ("portal, serial look-up", brand_page, "/portal?serial=C4242", args.requests),
            ("CSV, year by day", operator_page, f"/dashboard/return-rates.csv?{by_day}",
             args.requests),
            ("reuse page, operator", operator_page, "/dashboard/reuse", args.requests),
            ("reuse page, brand", brand_page, "/portal/reuse", args.requests),
            ("materials, last 30 days", operator_page, "/dashboard/materials", args.requests),
            ("materials, year by month", operator_page, f"/dashboard/materials?{by_month}",
             args.requests),
            ("materials portal, year/month", brand_page, f"/portal/materials?{by_month}",
             args.requests),
            ("API materials, year by day", operator_api,
             materials + urlencode({**year, "bucket": "day", "tz": ZONE}), args.requests),
            ("API materials, year/month", operator_api,
             materials + urlencode({**year, "bucket": "month", "tz": ZONE}), args.requests),
            ("API materials, brand, month", brand_api,
             materials + urlencode({**year, "bucket": "month", "tz": ZONE}), args.requests),
            # Any whole-hour zone but the rollup zone reads the hourly rollup.
            ("API materials, UTC day", operator_api,
             materials + urlencode({**year, "bucket": "day", "tz": "UTC"}), args.requests),
            ("API materials, UTC month", operator_api,
             materials + urlencode({**year, "bucket": "month", "tz": "UTC"}), args.requests),
            ("API materials, brand, UTC day", brand_api,
             materials + urlencode({**year, "bucket": "day", "tz": "UTC"}), args.requests),
            ("API targets", operator_api, "/v1/stats/targets", args.requests),
        ]  # fmt: skip
        # Reported without a target: a year of every brand's hours in UTC (hour rows grow with
        # the catalogue times the hours, not with events), and a zone with a :30 offset, which
        # reads a year of quarter hours.
        untargeted = {
            "API materials, UTC day",
            "API materials, UTC month",
            "API materials, Kolkata (15m)",
        }
        requests.append(
            ("API materials, Kolkata (15m)", operator_api,
             materials + urlencode({**year, "bucket": "month", "tz": "Asia/Kolkata"}),
             min(args.requests, QUARTER_HOUR_REQUESTS)),
        )  # fmt: skip
        print(describe(url, args.items))
        if args.database is None:
            print(f"loaded in {load_s:.0f} s")
        print(f"{'request':<30} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst: dict[str, float] = {}
        absent = []
        for label, headers, path, n in requests:
            measured = request_times(port, headers, path, n)
            if isinstance(measured, int):
                absent.append(label)
                print(f"{label:<30} {n:>8} {'not measured: HTTP ' + str(measured):>26}")
                continue
            p50, p95, most = measured
            if label not in untargeted:
                worst[label] = p95
            note = "  (reported only)" if label in untargeted else ""
            print(f"{label:<30} {n:>8} {p50:>8.1f} {p95:>8.1f} {most:>8.1f}{note}", flush=True)
        slow = {label: p95 for label, p95 in worst.items() if p95 >= TARGET_MS}
        verdict = "FAIL" if slow else "INCOMPLETE" if absent else "PASS"
        print(f"verdict: {verdict}: target p95 < {TARGET_MS:.0f} ms; over it: "
              + (", ".join(f"{k} ({v:,.0f} ms)" for k, v in slow.items()) or "none")
              + (f"; not measured (404): {', '.join(absent)}" if absent else ""))  # fmt: skip
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        if args.keep or args.database is not None:
            print(f"kept database {name}")
        else:
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


if __name__ == "__main__":
    main()
