"""`GET /v1/stats/return-rates` latency for a year, daily, as the event count grows.

    python bench/stats.py [--steps 1,5,10,20] [--requests 40]

Loads events straight into the tables (SQL, not through MQTT: this measures reading),
builds the rollups the worker would have kept, then times the real API over HTTP for a
year of daily buckets in the deployment's zone (day rollups): all packaging types, one
brand, one site, and monthly; then in another zone (hourly rollup) and in another zone
with a site filter (15-minute rollup). Steps are cumulative millions of events. Prints
p50/p95 per step; the target is p95 < 50 ms.

The loaded world also carries the material figures (docs/materials.md), for
bench/pages.py: packaging types of six materials with recycled and renewable content and
a fibre bottle, every product's declaration (one brand's changes mid-year), and sorting
counts at four sorting sites (3 % of the events, about as many containers as are
returned) into material, reuse, energy and residual streams, most of them weighed.
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
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
SORTING_SITES = 4
SORTERS_PER_SITE = 2
# Day rollups in this zone, and the deployment's zone of the API.
ZONE = "Europe/Oslo"


def _last_twelve_months(today: date) -> tuple[str, str]:
    """The 12 whole months before `today`'s month (ISO dates): the window of the targets'
    latest value, and one that ends close to the pages' default last 30 days, so that
    both read loaded events whenever the bench runs."""
    end = today.replace(day=1)
    return date(end.year - 1, end.month, 1).isoformat(), end.isoformat()


# The year the events are spread over, local dates in ZONE ([from, to)).
YEAR = _last_twelve_months(datetime.now(ZoneInfo(ZONE)).date())
# One brand moves its products of one packaging type to another recycled share from
# the seventh month on (docs/materials.md: the declaration at the time of sale counts).
CHANGED_BRAND, CHANGED_TYPE, CHANGED_RECYCLED_PCT = "brand-0", "type-0", 50
_FIRST = date.fromisoformat(YEAR[0])
CHANGED_FROM = datetime(
    _FIRST.year + (_FIRST.month + 5) // 12, (_FIRST.month + 5) % 12 + 1, 1, tzinfo=ZoneInfo(ZONE)
)

# The packaging types type-0 … type-9, shaped like Norway's deposit scheme and its
# neighbours: (name, material, nominal g, recycled %, renewable %, fibre-based, reusable
# target trips (None: one-way), the stream a sorting site puts it in, the stream of its
# contaminated or mis-sorted ones). The refillable bottle is counted back into the reuse
# loop (its broken ones to glass recycling); what burns goes off-stream to energy
# recovery, glass and metal to residual waste.
PACKAGING_TYPES: list[tuple[str, str, int, int, int, bool, int | None, str, str]] = [
    ("PET bottle 0.5 l", "PET", 22, 35, 0, False, None, "PET", "energy"),
    ("PET bottle 1.5 l", "PET", 38, 30, 0, False, None, "PET", "energy"),
    ("rPET bottle 0.33 l", "PET", 18, 100, 0, False, None, "PET", "energy"),
    ("HDPE bottle 1 l", "HDPE", 40, 10, 30, False, None, "HDPE", "energy"),
    ("PP cup 0.4 l", "PP", 12, 0, 0, False, None, "PP", "energy"),
    ("Aluminium can 0.33 l", "aluminium", 13, 70, 0, False, None, "aluminium", "residual"),
    ("Aluminium can 0.5 l", "aluminium", 16, 70, 0, False, None, "aluminium", "residual"),
    ("Glass bottle 0.33 l", "glass", 200, 40, 0, False, None, "glass", "residual"),
    ("Fibre bottle 0.5 l", "fibre", 30, 10, 85, True, None, "fibre", "energy"),
    ("Refillable glass bottle 0.5 l", "glass", 370, 40, 0, False, 25, "reuse", "glass"),
]


def _column(k: int) -> list[Any]:
    return [t[k] for t in PACKAGING_TYPES]


# Named SQL parameters of REGISTRY, LOAD and SORTED.
LOAD_PARAMS: dict[str, Any] = {
    "products": PRODUCTS,
    "sites": SITES,
    "per_site": DEVICES_PER_SITE,
    "sorting_sites": SORTING_SITES,
    "sorters_per_site": SORTERS_PER_SITE,
    "type_names": _column(0),
    "materials": _column(1),
    "weights": _column(2),
    "recycled": _column(3),
    "renewable": _column(4),
    "fibre": _column(5),
    "target_trips": _column(6),
    "streams": _column(7),
    "off_streams": _column(8),
    "changed_brand": CHANGED_BRAND,
    "changed_type": CHANGED_TYPE,
    "changed_recycled": CHANGED_RECYCLED_PCT,
    "changed_from": CHANGED_FROM,
}

REGISTRY = [
    """INSERT INTO packaging_types
           (id, name, material, deposit, weight_g, recycled_content_pct,
            renewable_content_pct, fibre_based, reusable, target_trips)
       SELECT 'type-' || (k - 1), name, material, 200, weight_g, recycled, renewable, fibre,
              trips IS NOT NULL, trips
       FROM unnest(%(type_names)s::text[], %(materials)s::text[], %(weights)s::int[],
                   %(recycled)s::int[], %(renewable)s::int[], %(fibre)s::bool[],
                   %(target_trips)s::int[])
            WITH ORDINALITY AS t (name, material, weight_g, recycled, renewable, fibre,
                                  trips, k)""",
    """INSERT INTO products (gtin, packaging_type_id, brand, name)
       SELECT lpad((7038010000000 + p)::text, 14, '0'), 'type-' || (p %% 10),
              'brand-' || (p %% 20), 'Product ' || p
       FROM generate_series(0, %(products)s - 1) p""",
    """INSERT INTO sites (id, name, kind) SELECT 'site-' || s, 'Site ' || s, 'shop'
       FROM generate_series(0, %(sites)s - 1) s""",
    """INSERT INTO devices (id, site_id, kind)
       SELECT 'rvm-' || d, 'site-' || (d / %(per_site)s), 'rvm'
       FROM generate_series(0, %(sites)s * %(per_site)s - 1) d""",
    """INSERT INTO sites (id, name, kind)
       SELECT 'sorting-' || s, 'Sorting site ' || s, 'sorting'
       FROM generate_series(0, %(sorting_sites)s - 1) s""",
    """INSERT INTO devices (id, site_id, kind)
       SELECT 'sorter-' || d, 'sorting-' || (d / %(sorters_per_site)s), 'sorter'
       FROM generate_series(0, %(sorting_sites)s * %(sorters_per_site)s - 1) d""",
    # Every product's first declaration (from -infinity), as the registry API records it.
    "SELECT declare_materials(array_agg(gtin), NULL) FROM products",
    # One brand's bottles of one type change their recycled share mid-year.
    """UPDATE products SET recycled_content_pct = %(changed_recycled)s
       WHERE brand = %(changed_brand)s AND packaging_type_id = %(changed_type)s""",
    """SELECT declare_materials(array_agg(gtin), %(changed_from)s) FROM products
       WHERE brand = %(changed_brand)s AND packaging_type_id = %(changed_type)s""",
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
FROM (SELECT %(from)s + random() * %(span_s)s * INTERVAL '1 second' AS ts,
             (random() * (%(sites)s * %(per_site)s - 1))::int AS d, random() AS r
      FROM generate_series(1, %(n)s)) g
"""

# Share of all loaded events that are sorting counts; each counts 1 to SORTED_QTY_MAX
# containers of one product (mean 14.5), so about as many containers are sorted as the
# RVMs take back (45 % of the other 97 %, one each), as a sorting site counts a truck load.
SORTED_SHARE = 0.03
SORTED_QTY_MAX = 28
# As the simulator's sorting sites (devices/simulator/scenario.py SortingParams): counts
# off their material stream (contaminated, mis-sorted), counts weighed on the line's
# scale and the scale's spread around qty times the nominal weight; and a few counts
# into a stream the registry does not map (reported as unmapped).
OFF_STREAM_SHARE = 0.03
UNMAPPED_SHARE = 0.002
WEIGHED_SHARE = 0.85
WEIGHT_SPREAD = 0.03

SORTED = """
INSERT INTO events
    (event_id, ts, received_at, device_id, site_id, type, gtin, qty, stream, weight_g)
SELECT gen_random_uuid(), g.ts, g.ts, 'sorter-' || g.d,
       'sorting-' || (g.d / %(sorters_per_site)s), 'sorted', pr.gtin, g.qty,
       CASE WHEN g.r < %(off_stream_share)s THEN (%(off_streams)s::text[])[1 + g.p %% 10]
            WHEN g.r < %(off_stream_share)s + %(unmapped_share)s THEN 'mixed'
            ELSE (%(streams)s::text[])[1 + g.p %% 10]
       END,
       CASE WHEN g.w < %(weighed_share)s
            THEN round(g.qty * t.weight_g * (1 - %(spread)s + 2 * %(spread)s * random()))
       END
FROM (SELECT %(from)s + random() * %(span_s)s * INTERVAL '1 second' AS ts,
             (random() * (%(sorting_sites)s * %(sorters_per_site)s - 1))::int AS d,
             (random() * (%(products)s - 1))::int AS p,
             1 + (random() * (%(qty_max)s - 1))::int AS qty, random() AS r, random() AS w
      FROM generate_series(1, %(n)s)) g
JOIN products pr ON pr.gtin = lpad((7038010000000 + g.p)::text, 14, '0')
JOIN packaging_types t ON t.id = pr.packaging_type_id
"""


def load_events(conn: psycopg.Connection[Any], n: int) -> None:
    """Insert `n` events over YEAR: RVM events (LOAD) and SORTED_SHARE of them sorting
    counts (SORTED)."""
    start, end = (datetime.fromisoformat(d).replace(tzinfo=ZoneInfo(ZONE)) for d in YEAR)
    sorted_n = round(n * SORTED_SHARE)
    params = {**LOAD_PARAMS, "from": start, "span_s": (end - start).total_seconds()}
    conn.execute(LOAD, {**params, "n": n - sorted_n})
    conn.execute(
        SORTED,
        {
            **params,
            "n": sorted_n,
            "qty_max": SORTED_QTY_MAX,
            "off_stream_share": OFF_STREAM_SHARE,
            "unmapped_share": UNMAPPED_SHARE,
            "weighed_share": WEIGHED_SHARE,
            "spread": WEIGHT_SPREAD,
        },
    )


# The rollups the worker keeps, rebuilt from the events; day rollups in ZONE.
ROLLUP = [
    "TRUNCATE event_counts_15m",
    """INSERT INTO event_counts_15m (bucket, site_id, gtin, type, qty, events)
       SELECT date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00+00'), site_id, gtin,
              type, sum(qty), count(*)
       FROM events GROUP BY 1, 2, 3, 4""",
    "SELECT rebuild_return_counts_daily()",
    "SELECT rebuild_reject_counts_daily()",
    "SELECT rebuild_return_counts_hourly()",
    "SELECT rebuild_material_counts()",
    "VACUUM ANALYZE event_counts_15m",
    "VACUUM ANALYZE return_counts_daily",
    "VACUUM ANALYZE site_return_counts_daily",
    "VACUUM ANALYZE return_counts_hourly",
    "VACUUM ANALYZE material_declarations",
    "VACUUM ANALYZE material_counts_15m",
    "VACUUM ANALYZE material_grams_daily",
    "VACUUM ANALYZE material_grams_hourly",
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
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in REGISTRY:
                conn.execute(statement, LOAD_PARAMS)
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
                load_events(conn, target - loaded)
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
