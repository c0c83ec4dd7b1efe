"""`GET /v1/stats/reuse` with up to 10 million trips: its mean and median trip days read
the trip-length counts (migration 0017), so its time must not grow with the trips.

    python bench/trips.py [--steps 1,10] [--items 200000] [--requests 20] [--keep]
    python bench/trips.py --database looptrack_bench_trips_1a2b3c4d [--api-root DIR]

Loads trips straight into item_trips with generate_series (SQL, not through MQTT: this
measures reading): 4 reusable packaging types of 10 products each over 5 brands,
`--items` crates, cups, bottles and kegs in item_loops, and trips of a log-normal length
(a median of 6 to 30 days by type, to the microsecond), 5 % of them without a start.
Steps are cumulative millions of trips (at most 10). After each step the counts are
rebuilt from item_trips (rebuild_trip_lengths, as the migration does for a database
upgraded with trips in it), and the real API is timed over HTTP: all packaging types,
one type, one brand. Next to it, the statement that answered trip days before 0017
(avg and percentile_cont over every trip) is timed, and its answer compared with the
API's: the median must be equal, the mean equal to 12 digits.

`--keep` keeps the database; `--database` times a kept one again without loading, and
`--api-root` serves the API from another checkout (e.g. a worktree of the commit before
0017), to time the endpoint as it was on the same data.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
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

from bench.load import PG_SERVER  # noqa: E402
from bench.pages import request_times  # noqa: E402
from looptrack.local_services import free_port, port_open  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402
from schemas.migrations import migrate  # noqa: E402

MAX_MILLIONS = 10  # the size this bench is for; the machine is shared
CHUNK = 1_000_000  # trips per INSERT statement
# (packaging type, median trip days); 10 products of each, brands brand-0 … brand-4.
PACKAGING = [("crate-24", 16), ("cup-0.4l", 6), ("bottle-0.33l", 12), ("keg-20l", 30)]
PRODUCTS_PER_TYPE = 10
BRANDS = 5
TRIP_DAYS_SIGMA = 0.7  # of the log-normal trip length
BRAND = "brand-1"

REGISTRY_SQL = [
    """INSERT INTO packaging_types (id, name, material, reusable, target_trips)
       SELECT t.id, t.id, 'PP', true, 50 FROM unnest(%(types)s::text[]) AS t (id)""",
    # Product k (0 … 39) is of type k / 10 and brand k % 5.
    """INSERT INTO products (item_class, packaging_type_id, brand, name)
       SELECT lpad((7038010100000 + k)::text, 14, '0'), (%(types)s::text[])[k / %(per_type)s + 1],
              'brand-' || k %% %(brands)s, 'Product ' || k
       FROM generate_series(0, %(products)s - 1) AS k""",
    # Item j is of product j % 40.
    """INSERT INTO item_loops (item_class, serial, trips, in_loop, last_type, last_ts, loop_type,
                               loop_ts)
       SELECT lpad((7038010100000 + j %% %(products)s)::text, 14, '0'), 'S' || j,
              %(trips_per_item)s, true, 'returned', TIMESTAMPTZ '2026-01-01 00:00+00',
              'returned', TIMESTAMPTZ '2026-01-01 00:00+00'
       FROM generate_series(0, %(items)s - 1) AS j""",
]
# Trips first to last (numbers), of item i % items; a log-normal length by Box-Muller.
TRIPS_SQL = """
INSERT INTO item_trips (end_event_id, item_class, serial, started_at, ended_at)
SELECT gen_random_uuid(), lpad((7038010100000 + x.product)::text, 14, '0'), 'S' || x.item,
       CASE WHEN x.i %% 20 <> 0 THEN x.started END,
       x.started + make_interval(secs => 86400 * exp(
           ln((%(medians)s::float8[])[x.product / %(per_type)s + 1])
           + %(sigma)s * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))
FROM (
    SELECT i, i %% %(items)s AS item, i %% %(items)s %% %(products)s AS product,
           TIMESTAMPTZ '2025-01-01 00:00+00' + random() * INTERVAL '365 days' AS started
    FROM generate_series(%(first)s, %(last)s) AS i
) x
"""
# What /v1/stats/reuse ran for trip days before migration 0017: every trip, every time.
BEFORE_SQL = """
SELECT p.packaging_type_id, avg(t.days),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.days)
FROM item_trips t
JOIN products p ON p.item_class = t.item_class
WHERE t.days IS NOT NULL
GROUP BY 1
ORDER BY 1
"""


def load_registry(url: str, items: int, trips_per_item: int) -> None:
    params = {
        "types": [t for t, _ in PACKAGING],
        "per_type": PRODUCTS_PER_TYPE,
        "brands": BRANDS,
        "products": PRODUCTS_PER_TYPE * len(PACKAGING),
        "items": items,
        "trips_per_item": trips_per_item,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in REGISTRY_SQL:
            conn.execute(statement, params)


def load_trips(url: str, first: int, last: int, items: int) -> float:
    """Trips numbered first … last into item_trips (its indexes built again afterwards,
    faster than kept up row by row), then the counts rebuilt; returns the seconds."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'item_trips'"
        ).fetchall()
        conn.execute("ALTER TABLE item_trips DROP CONSTRAINT item_trips_pkey")
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
        for chunk in range(first, last + 1, CHUNK):
            conn.execute(
                TRIPS_SQL,
                {
                    "first": chunk,
                    "last": min(chunk + CHUNK - 1, last),
                    "items": items,
                    "products": PRODUCTS_PER_TYPE * len(PACKAGING),
                    "per_type": PRODUCTS_PER_TYPE,
                    "medians": [float(m) for _, m in PACKAGING],
                    "sigma": TRIP_DAYS_SIGMA,
                },
            )
        for name, definition in indexes:
            conn.execute(definition)
            if name == "item_trips_pkey":
                conn.execute(
                    "ALTER TABLE item_trips ADD CONSTRAINT item_trips_pkey"
                    " PRIMARY KEY USING INDEX item_trips_pkey"
                )
        conn.execute("SELECT rebuild_trip_lengths()")
        conn.execute("VACUUM ANALYZE item_trips, trip_length_counts, item_loops")
    return time.perf_counter() - started


def describe(url: str) -> str:
    """What the database holds, in a line."""
    with psycopg.connect(url) as conn:
        trips, timed, items = conn.execute(
            "SELECT (SELECT count(*) FROM item_trips),"
            " (SELECT count(*) FROM item_trips WHERE started_at IS NOT NULL),"
            " (SELECT count(*) FROM item_loops)"
        ).fetchone() or (0, 0, 0)
        rows = dict(
            conn.execute("SELECT unit_s, count(*) FROM trip_length_counts GROUP BY 1").fetchall()
        )
    return (
        f"{trips:,} trips ({timed:,} with a start) of {items:,} items; trip-length counts:"
        f" {rows.get(86400, 0):,} day, {rows.get(3600, 0):,} hour and {rows.get(60, 0):,}"
        " minute rows"
    )


def time_before(url: str, runs: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """The median ms of the statement of before, and its (mean, median) per type."""
    times, answer = [], {}
    with psycopg.connect(url) as conn:
        for _ in range(runs):
            started = time.perf_counter()
            rows = conn.execute(BEFORE_SQL).fetchall()
            times.append((time.perf_counter() - started) * 1000)
            answer = {t: (float(mean), float(median)) for t, mean, median in rows}
    return statistics.median(times), answer


def api_answer(port: int, headers: dict[str, str]) -> dict[str, tuple[float, float]]:
    """(mean, median) trip days per packaging type, as the API answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("GET", "/v1/stats/reuse", headers=headers)
        rows = json.loads(connection.getresponse().read())["rows"]
    finally:
        connection.close()
    return {r["packaging_type"]: (r["mean_trip_days"], r["median_trip_days"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", default="1,10", help="cumulative millions of trips")
    parser.add_argument("--items", type=int, default=200_000, help="serialised items")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--before-runs", type=int, default=3, help="runs of the old statement")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--database", help="time a database a --keep run loaded; no load")
    parser.add_argument("--api-root", type=Path, default=ROOT, help="checkout serving the API")
    args = parser.parse_args()
    steps = [int(float(s) * 1_000_000) for s in args.steps.split(",")]
    if steps != sorted(steps) or steps[-1] > MAX_MILLIONS * 1_000_000:
        parser.error(f"--steps: increasing, at most {MAX_MILLIONS} (millions)")

    name = args.database or f"looptrack_bench_trips_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(PG_SERVER, dbname=name)
    port = free_port()
    api = None
    try:
        if args.database is None:
            with psycopg.connect(PG_SERVER, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            migrate(url)
            load_registry(url, args.items, max(steps[-1] // args.items, 1))
        with psycopg.connect(url, autocommit=True) as conn:
            operator = {"Authorization": f"Bearer {create_key(conn, Role.OPERATOR, 'bench')}"}
            brand = {
                "Authorization": f"Bearer {create_key(conn, Role.BRAND, 'bench', brand=BRAND)}"
            }
        env = {**os.environ, "LOOPTRACK_DATABASE_URL": url, "PYTHONPATH": str(args.api_root)}
        api = subprocess.Popen(
            [sys.executable, "-m", "looptrack", "--log-level", "WARNING", "api",
             "--port", str(port)],
            env=env, cwd=args.api_root,
        )  # fmt: skip
        while not port_open(port):
            time.sleep(0.1)
        requests = [
            ("reuse, all types", operator, "/v1/stats/reuse"),
            ("reuse, one type", operator,
             "/v1/stats/reuse?" + urlencode({"packaging_type": PACKAGING[0][0]})),
            ("reuse, one brand", brand, "/v1/stats/reuse"),
        ]  # fmt: skip
        loaded = 0
        for step in [None] if args.database else steps:
            if step is not None:
                seconds = load_trips(url, loaded, step - 1, args.items)
                loaded = step
                print(f"loaded and counted up to {step:,} trips in {seconds:.0f} s")
            print(describe(url))
            print(f"{'request':<24} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            for label, headers, path in requests:
                measured = request_times(port, headers, path, args.requests)
                if isinstance(measured, int):
                    raise RuntimeError(f"{path}: HTTP {measured}")
                p50, p95, most = measured
                print(f"{label:<24} {args.requests:>8} {p50:>8.1f} {p95:>8.1f} {most:>8.1f}")
            before_ms, before = time_before(url, args.before_runs)
            print(f"{'trip days as before':<24} {args.before_runs:>8} {before_ms:>8.1f}"
                  "  (the old statement alone, every trip)")  # fmt: skip
            got = api_answer(port, operator)
            for packaging, (mean, median) in before.items():
                api_mean, api_median = got[packaging]
                same = api_median == median and math.isclose(api_mean, mean, rel_tol=1e-12)
                print(f"  {packaging:<14} mean {api_mean:.12f} median {api_median:.12f}"
                      f" {'= before' if same else f'≠ before ({mean!r}, {median!r})'}")  # fmt: skip
                if not same:
                    raise SystemExit("the API's trip days differ from the statement of before")
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
