"""Mean and median trip days of /v1/stats/reuse (SPEC §7) from the trip-length counts the
ingest keeps (migration 0017): equal to the trips' own mean and median (percentile_cont,
interpolated between the middle two when their number is even), for trips stored by the
real writer, moved with a product to another packaging type, folded again after a late
event, stored by concurrent workers, and counted by the migration."""

from __future__ import annotations

import math
import random
import statistics
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from schemas.migrations import migrate
from tests.factories import GTIN_COLA, GTIN_CRATE, event, seed_registry, with_check_digit
from tests.older_schema import before_item_class
from tests.storing import store

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
US, SECOND, MINUTE, HOUR, DAY = (timedelta(microseconds=1), timedelta(seconds=1),
                                 timedelta(minutes=1), timedelta(hours=1),
                                 timedelta(days=1))  # fmt: skip
CRATE = GTIN_CRATE.zfill(14)  # crate-24 of brand fjord (seed_registry)
COLA = GTIN_COLA.zfill(14)  # pet-0.5l of brand fjord
CRATE_2 = with_check_digit("0703801000777").zfill(14)
CUP = with_check_digit("0703801000555").zfill(14)
CRATE_12 = {"name": "Crate 12", "material": "HDPE", "reusable": True, "target_trips": 30}

# Trip lengths around the counts' day, hour and minute boundaries, with ties and microseconds.
CASES = {
    "one trip": [3 * DAY + 17 * US],
    "odd, a tie in the middle": [
        MINUTE - US, MINUTE, 3 * DAY - US, 3 * DAY, 3 * DAY, 3 * DAY + US,
        12 * DAY + timedelta(hours=5, microseconds=123_457),
    ],
    "even, the middle two either side of a day": [MINUTE, 3 * DAY - US, 3 * DAY, 40 * DAY + SECOND],
    "even, the middle two in one minute": [
        SECOND, 2 * DAY + 7 * MINUTE + SECOND, 2 * DAY + 8 * MINUTE - US, 9 * DAY,
    ],
    "even, the middle two either side of a minute": [
        DAY, 2 * DAY + 8 * MINUTE - US, 2 * DAY + 8 * MINUTE, 9 * DAY, 9 * DAY, 11 * DAY,
    ],
    "even, the middle two either side of an hour": [
        DAY, 2 * DAY + 3 * HOUR - US, 2 * DAY + 3 * HOUR, 9 * DAY,
    ],
    "even, a tie in the middle": [5 * DAY, DAY, 5 * DAY, 9 * DAY],
}  # fmt: skip


def days(length: timedelta) -> float:
    return length / DAY


def expected_days(lengths: list[timedelta]) -> tuple[float | None, float | None]:
    """(mean, median) trip days of trips of these lengths, None without trips."""
    if not lengths:
        return None, None
    values = [days(length) for length in lengths]
    return statistics.fmean(values), statistics.median(values)


def trips_events(
    gtin: str, serial: str, lengths: list[timedelta], start: datetime = T0
) -> list[dict[str, Any]]:
    """One item's trips of these lengths, one after the other: each from a `sold` (some
    after a `filled`, which does not start the trip then) or a lone `filled` to its
    `returned`, a day apart."""
    events, ts = [], start
    for n, length in enumerate(lengths):
        if n % 3 == 1:
            events.append(event("filled", gtin=gtin, serial=serial, ts=ts - timedelta(hours=5)))
        kind = "filled" if n % 3 == 2 else "sold"
        events.append(event(kind, gtin=gtin, serial=serial, ts=ts))
        events.append(event("returned", gtin=gtin, serial=serial, ts=ts + length))
        ts += length + DAY
    return events


def reuse_rows(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get("/v1/stats/reuse", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {row["packaging_type"]: row for row in response.json()["rows"]}


def assert_trip_days(row: dict[str, Any], lengths: list[timedelta]) -> None:
    mean, median = expected_days(lengths)
    for key, want in (("mean_trip_days", mean), ("median_trip_days", median)):
        if want is None:
            assert row[key] is None, key
        else:
            # The days of item_trips are float8 rounded from numeric: the last digit may differ.
            got = row[key]
            assert got is not None and math.isclose(got, want, rel_tol=1e-12), (key, got, want)


def assert_percentile_cont(db: psycopg.Connection[Any], row: dict[str, Any]) -> None:
    """The median is, to the bit, percentile_cont(0.5) over every trip of the type (the
    query that read them all before), and the mean their average."""
    mean, median = db.execute(
        "SELECT avg(t.days), percentile_cont(0.5) WITHIN GROUP (ORDER BY t.days)"
        " FROM item_trips t JOIN products p ON p.item_class = t.item_class"
        " WHERE p.packaging_type_id = %s",
        (row["packaging_type"],),
    ).fetchone() or (None, None)
    assert row["median_trip_days"] == median
    assert row["mean_trip_days"] == pytest.approx(mean, rel=1e-13)


def assert_trip_counts(db: psycopg.Connection[Any]) -> None:
    """The trip-length counts hold exactly the stored trips with a start, by their
    products' packaging type and brand and whole days, hours and minutes of length, as
    counted here from item_trips."""
    expected: dict[tuple[str, int, int, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for packaging, brand, started, ended in db.execute(
        "SELECT p.packaging_type_id, p.brand, t.started_at, t.ended_at"
        " FROM item_trips t JOIN products p ON p.item_class = t.item_class"
        " WHERE t.started_at IS NOT NULL"
    ):
        length = ended - started
        for unit in (DAY, HOUR, MINUTE):
            counted = expected[(packaging, int(unit.total_seconds()), length // unit, brand)]
            counted[0] += 1
            counted[1] += Decimal(length // US) / 1_000_000
    kept = {
        (t, u, b, brand): [n, s]
        for t, u, b, brand, n, s in db.execute(
            "SELECT packaging_type, unit_s, bucket, brand, trips, length_s FROM trip_length_counts"
        )
    }
    assert kept == dict(expected)


@pytest.mark.parametrize("case", list(CASES))
def test_mean_and_median_are_those_of_the_trips(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any], case: str
) -> None:
    seed_registry(db, ["rvm-1"])
    lengths = CASES[case]
    events = []
    # Two or three trips per crate, in the order of CASES, so that ties and neighbours at
    # a boundary belong to different items.
    for n in range(0, len(lengths), 3):
        events += trips_events(CRATE, f"C{n}", lengths[n : n + 3], T0 + n * timedelta(hours=1))
    # Neither a trip first seen at its return (no start) nor a duplicate return has days.
    events += [event("returned", gtin=CRATE, serial="N1", ts=T0)]
    loop = trips_events(CRATE, "D1", [DAY])
    events += [*loop, event("returned", gtin=CRATE, serial="D1", ts=T0 + 2 * DAY)]
    cola = [300 * DAY, 301 * DAY]
    events += trips_events(COLA, "B1", cola)
    # In two batches, the later trips first.
    store(db, "rvm-1", events[len(events) // 2 :])
    store(db, "rvm-1", events[: len(events) // 2])

    rows = reuse_rows(client, keys["operator"])
    assert rows["crate-24"]["trips"] == len(lengths) + 2
    assert_trip_days(rows["crate-24"], [*lengths, DAY])
    assert_trip_days(rows["pet-0.5l"], cola)
    only = reuse_rows(client, keys["operator"], packaging_type="crate-24", brand="fjord")
    assert list(only) == ["crate-24"]
    assert_trip_days(only["crate-24"], [*lengths, DAY])
    for row in rows.values():
        assert_percentile_cont(db, row)
    assert_trip_counts(db)


def test_trips_follow_their_product_to_another_packaging_type_and_brand(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["rvm-1"])
    admin = keys["admin"]
    product = {"packaging_type": "crate-24", "brand": "fjord", "name": "Crate two"}
    assert client.put(f"/v1/products/{CRATE_2}", json=product, headers=admin).status_code == 201
    first, second = [2 * DAY, 7 * DAY + US, 9 * DAY], [4 * DAY, 4 * DAY + MINUTE]
    unregistered = [DAY + SECOND, 30 * DAY]
    store(db, "rvm-1", trips_events(CRATE, "A1", first) + trips_events(CRATE_2, "B1", second))
    store(db, "rvm-1", trips_events(CUP, "U1", unregistered))

    rows = reuse_rows(client, keys["operator"])
    assert set(rows) == {"crate-24"}  # the cup is no product yet
    assert_trip_days(rows["crate-24"], first + second)

    # The second crate re-registered as another packaging type of another brand, and the
    # cup registered under that type: their trips go with them.
    put = client.put("/v1/packaging-types/crate-12", json=CRATE_12, headers=admin)
    assert put.status_code == 201
    moved = {"packaging_type": "crate-12", "brand": "other", "name": "Crate two"}
    assert client.put(f"/v1/products/{CRATE_2}", json=moved, headers=admin).status_code == 200
    cup = {"packaging_type": "crate-12", "brand": "fjord", "name": "Cup"}
    assert client.put(f"/v1/products/{CUP}", json=cup, headers=admin).status_code == 201
    assert_trip_counts(db)
    rows = reuse_rows(client, keys["operator"])
    assert_trip_days(rows["crate-24"], first)
    assert_trip_days(rows["crate-12"], second + unregistered)
    assert_trip_days(reuse_rows(client, keys["fjord"])["crate-12"], unregistered)
    assert_trip_days(reuse_rows(client, keys["other"])["crate-12"], second)

    # Trips stored after the move count under the new type.
    later = [3 * DAY + 3 * US]
    store(db, "rvm-1", trips_events(CRATE_2, "B1", later, start=T0 + 60 * DAY))
    rows = reuse_rows(client, keys["operator"])
    assert_trip_days(rows["crate-12"], second + unregistered + later)
    assert_trip_days(reuse_rows(client, keys["other"])["crate-12"], second + later)
    for row in rows.values():
        assert_percentile_cont(db, row)
    assert_trip_counts(db)


def test_a_late_event_changes_the_trips_it_falls_in(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    seed_registry(db, ["rvm-1"])
    store(
        db,
        "rvm-1",
        [
            event("filled", gtin=CRATE, serial="L1", ts=T0),
            event("returned", gtin=CRATE, serial="L1", ts=T0 + 10 * DAY),
        ],
    )
    assert_trip_days(reuse_rows(client, keys["operator"])["crate-24"], [10 * DAY])
    # A return and a sale that happened in between arrive late: two trips of 4 days, from
    # the `filled` and from the `sold`; the trip of 10 days is gone.
    store(
        db,
        "rvm-1",
        [
            event("returned", gtin=CRATE, serial="L1", ts=T0 + 4 * DAY),
            event("sold", gtin=CRATE, serial="L1", ts=T0 + 6 * DAY),
        ],
    )
    row = reuse_rows(client, keys["operator"])["crate-24"]
    assert row["trips"] == 2
    assert_trip_days(row, [4 * DAY, 4 * DAY])
    assert_trip_counts(db)


def trip_lengths_by_rule(events: list[dict[str, Any]]) -> list[timedelta]:
    """SPEC §7 written out: in (ts, event_id) order, a `returned` not right after another
    `returned` ends a trip, which started at the first `sold` since the previous trip,
    else at the first `filled`, else nowhere (no days)."""
    ordered = sorted(events, key=lambda e: (datetime.fromisoformat(e["ts"]), e["event_id"]))
    lengths, previous = [], None
    sold: datetime | None = None
    filled: datetime | None = None
    for e in ordered:
        kind, ts = e["type"], datetime.fromisoformat(e["ts"])
        if kind == "returned" and previous != "returned":
            start = sold or filled
            if start is not None:
                lengths.append(ts - start)
            sold = filled = None
        elif kind == "sold" and sold is None:
            sold = ts
        elif kind == "filled" and filled is None:
            filled = ts
        if kind in ("sold", "filled", "returned"):
            previous = kind
    return lengths


def test_shuffled_batches_of_concurrent_workers_give_the_trips_of_ts_order(
    client: TestClient, keys: dict[str, Any], db: psycopg.Connection[Any], db_url: str
) -> None:
    rng = random.Random(17)
    seed_registry(db, ["rvm-1", "rvm-2"])
    histories: dict[str, list[dict[str, Any]]] = {}
    for n in range(60):
        gtin = CRATE if n % 3 else COLA
        ts = T0 + timedelta(hours=rng.randrange(48))
        events = []
        for _ in range(rng.randrange(2, 16)):
            kind = rng.choice(["filled", "sold", "sold", "returned", "returned", "washed"])
            events.append(event(kind, gtin=gtin, serial=f"R{n}", ts=ts))
            if rng.random() < 0.9:  # else the next event has the same ts
                ts += timedelta(days=rng.randrange(6), microseconds=rng.randrange(86_400_000_000))
        histories[f"R{n}"] = events
    expected: dict[str, list[timedelta]] = {"crate-24": [], "pet-0.5l": []}
    for events in histories.values():
        kind = "crate-24" if events[0]["gtin"] == CRATE else "pet-0.5l"
        expected[kind] += trip_lengths_by_rule(events)
    # An odd number of trips of one type, an even number of the other (events at the
    # same ts are ordered by their random ids, so the trips may differ from run to run).
    for kind, gtin, parity in (("crate-24", CRATE, 1), ("pet-0.5l", COLA, 0)):
        if len(expected[kind]) % 2 != parity:
            histories[kind] = trips_events(gtin, kind, [DAY + US])
            expected[kind].append(DAY + US)
    everything = [e for events in histories.values() for e in events]
    shuffled = rng.sample(everything, len(everything))
    batches = [shuffled[i : i + 25] for i in range(0, len(shuffled), 25)]
    failures: list[BaseException] = []

    def worker(device: str, mine: list[list[dict[str, Any]]]) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                for batch in mine:
                    store(conn, device, batch)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    threads = [
        threading.Thread(target=worker, args=("rvm-1", batches[0::2])),
        threading.Thread(target=worker, args=("rvm-2", batches[1::2])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures

    rows = reuse_rows(client, keys["operator"])
    for packaging, lengths in expected.items():
        assert_trip_days(rows[packaging], lengths)
        assert_percentile_cont(db, rows[packaging])
    assert_trip_counts(db)


def test_migration_counts_the_trips_stored_before_it(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, ["rvm-1"])
    store(db, "rvm-1", trips_events(CRATE, "M1", [DAY, 2 * DAY + US, 2 * DAY + MINUTE]))
    store(db, "rvm-1", trips_events(COLA, "M2", [5 * DAY]) + trips_events(CUP, "M3", [DAY]))
    query = "SELECT * FROM trip_length_counts ORDER BY 1, 2, 3, 4"
    counts = db.execute(query).fetchall()
    assert counts

    # A database from before migration 0017, with the same trips (and the columns named
    # as before 0021).
    before_item_class(db)
    db.execute(
        "DROP TABLE trip_length_counts; DROP INDEX item_trips_length;"
        " DROP FUNCTION move_trip_lengths CASCADE;"
        " DROP FUNCTION count_trip_lengths, rebuild_trip_lengths, trip_seconds;"
        " DELETE FROM schema_migrations WHERE version = '0017_trip_day_counts'"
    )
    assert migrate(db_url) == ["0017_trip_day_counts", "0021_item_class"]
    assert db.execute(query).fetchall() == counts
    assert_trip_counts(db)
