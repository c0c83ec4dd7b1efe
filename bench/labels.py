"""Label throughput: commissioning N serialised items, rendering their labels to an
A4 PDF sheet and to a zip of PNGs, and downloading a batch's PDF through the API the
first time (rendered) and again (from the cache, and as a 304 to its ETag).

    python bench/labels.py [--count 10000] [--columns 3] [--rows 8]

Commissioning and the downloads run against a scratch database on the local PostgreSQL
(items, their `commissioned` events, one commit); the downloads go through the app
in-process (FastAPI's TestClient: no network, no uvicorn), as a brand key. Rendering uses
serials as `POST /v1/labels` issues them, plus a few set-82 serials that need
percent-encoding. Prints labels/s, wall time and output size for each step (a download
again: the median of AGAIN runs), then AT_ONCE identical downloads of a new batch sent
at once: their wall time, how many renders ran, and the slowest small request
(`GET /v1/products`) meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from api.app import create_app  # noqa: E402
from api.labels.commissioning import Batch, commission, new_serial  # noqa: E402
from api.labels.sheets import Label, pdf_sheet, png_zip  # noqa: E402
from schemas.api_keys import Role, create_key  # noqa: E402
from schemas.digital_link import build_uri  # noqa: E402
from schemas.migrations import migrate  # noqa: E402
from schemas.settings import Settings  # noqa: E402

BASE_URL = "https://id.looptrack.example"
GTIN = "07038010009990"
PG_SERVER = os.environ.get("LOOPTRACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AWKWARD_SHARE = 20  # one serial in this many uses characters that are percent-encoded
AGAIN = 5  # downloads again, after the first; their median is reported
AT_ONCE = 20  # identical downloads sent at once (issue 22.6: twenty stalled the API 10.8 s)


def make_labels(n: int) -> list[Label]:
    labels = []
    for i in range(n):
        serial = new_serial()
        if i % AWKWARD_SHARE == 0:
            serial = f'{serial[:6]}/%"*?'
        labels.append(
            Label(
                uri=build_uri(BASE_URL, GTIN, serial),
                item_class=GTIN,
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


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated scratch database with one product of brand 'fjord'; dropped after."""
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
                "INSERT INTO products (item_class, packaging_type_id, brand, name)"
                " VALUES (%s, 'crate-24', 'fjord', 'Crate')",
                (GTIN,),
            )
        yield url
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def commissioning(url: str, n: int) -> tuple[float, int]:
    """(seconds, bytes of serials) to commission n items of one product, committed."""
    with psycopg.connect(url) as conn:
        return timed(lambda: _commit(conn, commission(conn, GTIN, n, "pdf", created_by="bench")))


def downloads(url: str, n: int, grid: tuple[int, int]) -> tuple[list[tuple[str, float, int]], str]:
    """A batch of n commissioned through the API, its PDF downloaded the first time, then
    AGAIN times more (the median), and once more with the ETag (304): (step, s, bytes);
    and a line on AT_ONCE identical downloads of another batch sent at once."""
    with psycopg.connect(url, autocommit=True) as conn:
        key = create_key(conn, Role.BRAND, "bench", brand="fjord")
    headers = {"Authorization": f"Bearer {key}"}
    settings = Settings(database_url=url, public_base_url=BASE_URL, labels_max_count=n)
    params = {"columns": grid[0], "rows": grid[1]}
    with TestClient(create_app(settings)) as client:

        def commission_batch() -> str:
            made = client.post("/v1/labels", json={"gtin": GTIN, "count": n}, headers=headers)
            made.raise_for_status()
            return str(made.json()["download"])

        download = commission_batch()
        etags: list[str] = []
        bodies: list[bytes] = []

        def get(extra: dict[str, str] | None = None) -> bytes:
            response = client.get(download, params=params, headers=headers | (extra or {}))
            assert response.status_code in (200, 304), response.text
            etags.append(response.headers["etag"])
            bodies.append(response.content)
            return response.content

        first = timed(get)
        again = [timed(get) for _ in range(AGAIN)]
        not_modified = timed(lambda: get({"If-None-Match": etags[0]}))
        assert all(body == bodies[0] for body in bodies[: 1 + AGAIN]), "a download again differed"
        assert bodies[-1] == b"", "If-None-Match with the ETag was not a 304"
        at_once = _at_once(client, commission_batch(), params, headers)
    return [
        ("API download, first (render)", *first),
        ("API download, again (cache)", statistics.median(s for s, _ in again), again[0][1]),
        ("API download, 304 to its ETag", *not_modified),
    ], at_once


def _renders(client: TestClient) -> int:
    """Downloads the app has rendered (its label cache's misses; 0 before the first)."""
    cache = getattr(client.app.state, "label_cache", None)  # type: ignore[attr-defined]
    return 0 if cache is None else int(cache.stats().outcomes["miss"])


def _at_once(
    client: TestClient, download: str, params: dict[str, int], headers: dict[str, str]
) -> str:
    """AT_ONCE identical first downloads in threads; meanwhile small requests, one after
    another: the wall time, renders run and the slowest small request, as a line."""
    before = _renders(client)
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: statuses.append(
                client.get(download, params=params, headers=headers).status_code
            )
        )
        for _ in range(AT_ONCE)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    small: list[float] = []
    while any(thread.is_alive() for thread in threads):
        asked = time.perf_counter()
        client.get("/v1/products", headers=headers).raise_for_status()
        small.append(time.perf_counter() - asked)
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    renders = _renders(client) - before
    assert statuses == [200] * AT_ONCE, statuses
    return (
        f"{AT_ONCE} identical downloads at once (a new batch): {wall:.2f} s wall, "
        f"{renders} render(s); {len(small)} GET /v1/products meanwhile, slowest "
        f"{max(small):.3f} s, median {statistics.median(small):.3f} s"
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
    with scratch_database() as url:
        results = [("commissioning (database)", *commissioning(url, args.count))]
        results += [(name, *timed(step)) for name, step in steps]
        api_results, at_once = downloads(url, args.count, (args.columns, args.rows))
        results += api_results

    print(f"machine: {os.cpu_count()} CPUs; {args.count:,} labels")
    print(f"{'measurement':<30} {'labels/s':>10} {'seconds':>8} {'size':>10}")
    for name, seconds, size in results:
        print(f"{name:<30} {args.count / seconds:>10,.0f} {seconds:>8.3f} {size / 1e6:>7.1f} MB")
    print(at_once)


if __name__ == "__main__":
    main()
