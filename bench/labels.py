"""Label throughput: commissioning N serialised items, and rendering their labels to an
A4 PDF sheet and to a zip of PNGs.

    python bench/labels.py [--count 10000] [--columns 3] [--rows 8]

Commissioning runs against a scratch database on the local PostgreSQL (items, their
`commissioned` events, one commit). Rendering uses serials as `POST /v1/labels` issues
them, plus a few set-82 serials that need percent-encoding. Prints labels/s, wall time
and output size for each step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from api.labels.commissioning import Batch, commission, new_serial  # noqa: E402
from api.labels.sheets import Label, pdf_sheet, png_zip  # noqa: E402
from schemas.digital_link import build_uri  # noqa: E402
from schemas.migrations import migrate  # noqa: E402

BASE_URL = "https://id.looptrack.example"
GTIN = "07038010009990"
PG_SERVER = os.environ.get("LOOPTRACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AWKWARD_SHARE = 20  # one serial in this many uses characters that are percent-encoded


def make_labels(n: int) -> list[Label]:
    labels = []
    for i in range(n):
        serial = new_serial()
        if i % AWKWARD_SHARE == 0:
            serial = f'{serial[:6]}/%"*?'
        labels.append(
            Label(
                uri=build_uri(BASE_URL, GTIN, serial),
                gtin=GTIN,
                serial=serial,
                product="Solrik Eplejuice 0,5 l",
                deposit=300 if i % 2 else 0,
            )
        )
    return labels


def timed(step: Callable[[], bytes]) -> tuple[float, int]:
    """(seconds, output bytes) of one run of `step`."""
    started = time.perf_counter()
    out = step()
    return time.perf_counter() - started, len(out)


def commissioning(n: int) -> tuple[float, int]:
    """(seconds, bytes of serials) to commission n items of one product in a scratch
    database, committed; creating and migrating the database is not timed."""
    name = f"looptrack_bench_labels_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_conninfo(PG_SERVER, dbname=name)
        migrate(url)
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO packaging_types (id, name, material, reusable, deposit)"
                " VALUES ('crate-24', 'Crate', 'HDPE', true, 300)"
            )
            conn.execute(
                "INSERT INTO products (gtin, packaging_type_id, brand, name)"
                " VALUES (%s, 'crate-24', 'fjord', 'Crate')",
                (GTIN,),
            )
            conn.commit()
            seconds, serials = timed(
                lambda: _commit(conn, commission(conn, GTIN, n, "pdf", created_by="bench"))
            )
        return seconds, serials
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _commit(conn: psycopg.Connection[Any], batch: Batch) -> bytes:
    conn.commit()
    return "".join(batch.serials).encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000, help="labels to render")
    parser.add_argument("--columns", type=int, default=3, help="labels across an A4 sheet")
    parser.add_argument("--rows", type=int, default=8, help="labels down an A4 sheet")
    args = parser.parse_args()

    labels = make_labels(args.count)
    steps: list[tuple[str, Callable[[], bytes]]] = [
        (
            f"PDF, A4 {args.columns}x{args.rows}",
            lambda: pdf_sheet(labels, columns=args.columns, rows=args.rows),
        ),
        ("zip of PNGs (10 px/module)", lambda: png_zip(labels)),
    ]
    results = [("commissioning (database)", *commissioning(args.count))]
    results += [(name, *timed(step)) for name, step in steps]

    print(f"machine: {os.cpu_count()} CPUs; {args.count:,} labels")
    print(f"{'measurement':<30} {'labels/s':>10} {'seconds':>8} {'size':>10}")
    for name, seconds, size in results:
        print(f"{name:<30} {args.count / seconds:>10,.0f} {seconds:>8.2f} {size / 1e6:>7.1f} MB")


if __name__ == "__main__":
    main()
