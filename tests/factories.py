"""Test data: a small registry and scan events, built without the code under test."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

import psycopg


def with_check_digit(body: str) -> str:
    """GS1 mod-10, written out here independently of schemas.gtin."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


GTIN_COLA = with_check_digit("703801000123")  # GTIN-13
GTIN_CRATE = with_check_digit("0703801000999")  # GTIN-14


def seed_registry(conn: psycopg.Connection[Any], devices: list[str]) -> None:
    """Two packaging types, two products, one shop, and the given devices (autocommit conn)."""
    conn.execute(
        "INSERT INTO packaging_types"
        " (id, name, material, reusable, target_trips, deposit, weight_g)"
        " VALUES ('pet-0.5l', 'PET 0.5 l', 'PET', false, NULL, 200, 22),"
        "        ('crate-24', 'Crate 24', 'HDPE', true, 50, 0, 1600)"
    )
    conn.execute(
        "INSERT INTO products (item_class, packaging_type_id, brand, name) VALUES"
        " (%s, 'pet-0.5l', 'fjord', 'Fjord Cola 0.5 l'), (%s, 'crate-24', 'fjord', 'Crate')",
        (GTIN_COLA.zfill(14), GTIN_CRATE.zfill(14)),
    )
    conn.execute("INSERT INTO sites (id, name, kind) VALUES ('shop-1', 'Shop 1', 'shop')")
    for device in devices:
        conn.execute(
            "INSERT INTO devices (id, site_id, kind) VALUES (%s, 'shop-1', 'rvm')", (device,)
        )


def register_asset_type(
    conn: psycopg.Connection[Any], asset_type: str, name: str = "Pool crate"
) -> None:
    """A GRAI asset type of brand 'fjord' (packaging crate-24), stored as
    PUT /v1/asset-types/{grai} stores it: a product of item class "8003" + asset type."""
    conn.execute(
        "INSERT INTO products (item_class, packaging_type_id, brand, name)"
        " VALUES (%s, 'crate-24', 'fjord', %s)",
        ("8003" + asset_type, name),
    )


def event(
    type_: str = "returned",
    *,
    gtin: str = GTIN_COLA,
    ts: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One valid event as a device would send it."""
    when = ts or datetime.now(UTC) - timedelta(seconds=30)
    return {
        "event_id": str(uuid.uuid4()),
        "ts": when.isoformat(),
        "type": type_,
        "gtin": gtin,
        **extra,
    }


def write_replay_file(path: Path, messages: list[tuple[str, Any]]) -> Path:
    """JSON lines for `python -m devices.replay`: (device, payload) pairs."""
    with path.open("w") as out:
        for device, payload in messages:
            out.write(json.dumps({"device": device, "payload": payload}) + "\n")
    return path


def count(conn: psycopg.Connection[Any], query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def counters(db: psycopg.Connection[Any]) -> tuple[int, int, int, int]:
    """(received, stored, duplicates, dead-lettered) summed over the workers."""
    row = db.execute(
        "SELECT coalesce(sum(received), 0), coalesce(sum(stored), 0),"
        " coalesce(sum(duplicates), 0), coalesce(sum(dead_lettered), 0) FROM ingest_counters"
    ).fetchone()
    assert row is not None
    return row


def assert_identity(db: psycopg.Connection[Any]) -> None:
    """received = stored + duplicates + dead-lettered (what /metrics reports)."""
    received, stored, duplicates, dead = counters(db)
    assert received == stored + duplicates + dead, (received, stored, duplicates, dead)


def assert_accounted(db: psycopg.Connection[Any]) -> None:
    """The identity holds and the counters match the tables (for tests in which only the
    ingest worker writes events and dead letters)."""
    assert_identity(db)
    _, stored, _, dead = counters(db)
    assert stored == count(db, "SELECT count(*) FROM events")
    assert dead == count(db, "SELECT count(*) FROM dead_letters")


def assert_stored_exactly(db: psycopg.Connection[Any], events: list[dict[str, Any]]) -> None:
    """Each event stored once, nothing else; rollups equal a recount of the raw events;
    the accounting identity holds."""
    assert count(db, "SELECT count(*) FROM events") == len(events)
    assert count(db, "SELECT count(DISTINCT event_id) FROM events") == len(events)
    stored_ids = {str(r[0]) for r in db.execute("SELECT event_id FROM events")}
    assert stored_ids == {e["event_id"] for e in events}
    # The aggregates agree with a count over the raw events, group by group.
    raw = db.execute(
        "SELECT site_id, item_class, type, sum(qty), count(*) FROM events"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    rolled = db.execute(
        "SELECT site_id, item_class, type, sum(qty), sum(events) FROM event_counts_15m"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    assert rolled == raw
    per_device = db.execute(
        "SELECT device_id, count(*) FROM events GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert (
        db.execute(
            "SELECT device_id, sum(events) FROM device_counts_daily GROUP BY 1 ORDER BY 1"
        ).fetchall()
        == per_device
    )
    # The return counts per packaging type and brand, by hour and by local day.
    assert db.execute(
        "SELECT hour, packaging_type, brand, sold, returned, rejected FROM return_counts_hourly"
        " WHERE sold + returned + rejected > 0 ORDER BY 1, 2, 3"
    ).fetchall() == db.execute(RECOUNT_RETURNS.format(by="date_bin('1 hour', e.ts, TIMESTAMPTZ"
                               " '2000-01-01 00:00+00')")).fetchall()  # fmt: skip
    assert (
        db.execute(
            "SELECT day, packaging_type, brand, sold, returned, rejected FROM return_counts_daily"
            " WHERE sold + returned + rejected > 0 ORDER BY 1, 2, 3"
        ).fetchall()
        == db.execute(
            RECOUNT_RETURNS.format(by="(e.ts AT TIME ZONE (SELECT zone FROM rollup_zone))::date")
        ).fetchall()
    )
    assert (
        db.execute(
            "SELECT day, item_class, reason, qty, events FROM reject_counts_daily ORDER BY 1, 2, 3"
        ).fetchall()
        == db.execute(
            "SELECT (ts AT TIME ZONE (SELECT zone FROM rollup_zone))::date, item_class, reason,"
            " sum(qty), count(*) FROM events WHERE type = 'rejected'"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
    )
    assert (
        db.execute(
            "SELECT month, item_class, reason, qty, events FROM reject_counts_monthly"
            " ORDER BY 1, 2, 3"
        ).fetchall()
        == db.execute(
            "SELECT date_trunc('month', ts AT TIME ZONE (SELECT zone FROM rollup_zone))::date,"
            " item_class, reason, sum(qty), count(*) FROM events WHERE type = 'rejected'"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
    )
    assert_item_loops(db)
    assert_accounted(db)


# SPEC §7 written out, the test oracle of the reuse aggregates: trips, their starts and
# duplicate returns, as plainly as the spec says them and sharing nothing with the
# ingest's fold (ingest/item_loops.py), which is the one production definition.
LOOP_TYPES = ("sold", "filled", "returned")


class Scan(NamedTuple):
    """An event of a serialised item, as SPEC §7 needs it."""

    gtin: str
    serial: str
    ts: datetime
    event_id: uuid.UUID
    type: str
    device_id: str = ""
    site_id: str = ""


def scans(events: list[dict[str, Any]]) -> list[Scan]:
    """Events as a device sends them (a `gtin` and `serial`, or a `code`) as Scans."""
    return [
        Scan(e.get("gtin", ""), e.get("serial", e.get("code", "")),
             datetime.fromisoformat(e["ts"]), uuid.UUID(e["event_id"]), e["type"])
        for e in events
    ]  # fmt: skip


@dataclass(frozen=True)
class ItemBySpec:
    """What one item's events amount to by SPEC §7."""

    trips: list[tuple[Scan, datetime | None]]  # the `returned` that ends each, its start
    duplicates: list[tuple[Scan, datetime]]  # each duplicate return, the return before it
    last: Scan  # the latest event of any type
    loop: Scan | None  # the latest sold, filled or returned
    ever_in_loop: bool  # ever sold or filled
    open_sold: datetime | None  # the first `sold` since the last trip ended
    open_filled: datetime | None  # the first `filled` since the last trip ended


def item_by_spec(events: list[Scan]) -> ItemBySpec:
    """One item's events, in any order. They count in the order of their `ts`, ties by
    event_id. A `returned` ends a trip unless the sold/filled/returned event before it is
    a `returned` too: then it is a duplicate return. A trip starts at the first `sold`
    after the previous trip's end, else the first `filled`, else it has no start."""
    ordered = sorted(events, key=lambda e: (e.ts, e.event_id))
    loop = [e for e in ordered if e.type in LOOP_TYPES]
    ends, duplicates = [], []
    for i, e in enumerate(loop):
        if e.type == "returned":
            if i > 0 and loop[i - 1].type == "returned":
                duplicates.append((e, loop[i - 1].ts))
            else:
                ends.append(i)

    def first(kind: str, part: list[Scan]) -> datetime | None:
        return next((e.ts for e in part if e.type == kind), None)

    trips = []
    for previous_end, end in pairwise([-1, *ends]):
        part = loop[previous_end + 1 : end]
        start = first("sold", part)
        trips.append((loop[end], start if start is not None else first("filled", part)))
    still_open = loop[ends[-1] + 1 :] if ends else loop
    return ItemBySpec(
        trips=trips,
        duplicates=duplicates,
        last=ordered[-1],
        loop=loop[-1] if loop else None,
        ever_in_loop=any(e.type in ("sold", "filled") for e in loop),
        open_sold=first("sold", still_open),
        open_filled=first("filled", still_open),
    )


def reuse_by_spec(events: list[Scan]) -> dict[tuple[str, str], ItemBySpec]:
    """item_by_spec of every item (gtin, serial) of `events`."""
    by_item: dict[tuple[str, str], list[Scan]] = {}
    for e in events:
        by_item.setdefault((e.gtin, e.serial), []).append(e)
    return {key: item_by_spec(item_events) for key, item_events in by_item.items()}


def assert_item_loops(db: psycopg.Connection[Any]) -> None:
    """The reuse aggregates the ingest keeps (item_loops, item_trips, duplicate_returns)
    equal SPEC §7 applied to the stored events of serialised items (reuse_by_spec), in
    `ts` order whatever order the events arrived in."""
    stored = [
        Scan(*row)
        for row in db.execute(
            "SELECT item_class, serial, ts, event_id, type, device_id, site_id FROM events"
            " WHERE serial IS NOT NULL"
        )
    ]
    expected = reuse_by_spec(stored).items()

    def fields(e: Scan | None) -> tuple[Any, ...]:
        return (e.type, e.ts, e.event_id) if e is not None else (None, None, None)

    assert_rows(
        db,
        "SELECT item_class, serial, trips, in_loop, last_type, last_ts, last_event_id, loop_type,"
        " loop_ts, loop_event_id, open_sold, open_filled FROM item_loops",
        [(*key, len(item.trips), item.ever_in_loop, *fields(item.last), *fields(item.loop),
          item.open_sold, item.open_filled)
         for key, item in expected],
    )  # fmt: skip
    assert_rows(
        db,
        "SELECT end_event_id, item_class, serial, started_at, ended_at FROM item_trips",
        [
            (end.event_id, *key, started, end.ts)
            for key, item in expected
            for end, started in item.trips
        ],
    )
    assert_rows(
        db,
        "SELECT event_id, item_class, serial, ts, previous_ts, device_id, site_id"
        " FROM duplicate_returns",
        [
            (e.event_id, *key, e.ts, previous_ts, e.device_id, e.site_id)
            for key, item in expected
            for e, previous_ts in item.duplicates
        ],
    )


def assert_rows(db: psycopg.Connection[Any], query: str, expected: list[tuple[Any, ...]]) -> None:
    """The rows of `query` are `expected` (both sorted here, by Python's order of their
    first columns, which are a key); else says which differ (a bare assert would say
    nothing: pytest rewrites the asserts of test modules only)."""
    found, expected = sorted(db.execute(query).fetchall()), sorted(expected)
    if found != expected:
        missing, extra = set(expected) - set(found), set(found) - set(expected)
        raise AssertionError(
            f"{query}\n{len(found)} rows, {len(expected)} expected by SPEC §7;"
            f" expected, not found: {sorted(missing)[:5]}; found, not expected: {sorted(extra)[:5]}"
        )


# Sold/returned/rejected from the raw events, under the products' packaging type and brand.
RECOUNT_RETURNS = (
    "SELECT {by}, p.packaging_type_id, p.brand,"
    " coalesce(sum(e.qty) FILTER (WHERE e.type = 'sold'), 0),"
    " coalesce(sum(e.qty) FILTER (WHERE e.type = 'returned'), 0),"
    " coalesce(sum(e.qty) FILTER (WHERE e.type = 'rejected'), 0)"
    " FROM events e JOIN products p ON p.item_class = e.item_class"
    " WHERE e.type IN ('sold', 'returned', 'rejected') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
