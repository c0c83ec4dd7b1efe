"""Test data: a small registry and scan events, built without the code under test."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
        "INSERT INTO products (gtin, packaging_type_id, brand, name) VALUES"
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
        "INSERT INTO products (gtin, packaging_type_id, brand, name)"
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
        "SELECT site_id, gtin, type, sum(qty), count(*) FROM events"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    rolled = db.execute(
        "SELECT site_id, gtin, type, sum(qty), sum(events) FROM event_counts_15m"
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
            "SELECT day, gtin, reason, qty, events FROM reject_counts_daily ORDER BY 1, 2, 3"
        ).fetchall()
        == db.execute(
            "SELECT (ts AT TIME ZONE (SELECT zone FROM rollup_zone))::date, gtin, reason, sum(qty),"
            " count(*) FROM events WHERE type = 'rejected' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
    )
    assert (
        db.execute(
            "SELECT month, gtin, reason, qty, events FROM reject_counts_monthly ORDER BY 1, 2, 3"
        ).fetchall()
        == db.execute(
            "SELECT date_trunc('month', ts AT TIME ZONE (SELECT zone FROM rollup_zone))::date,"
            " gtin, reason, sum(qty), count(*) FROM events WHERE type = 'rejected'"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
    )
    assert_item_loops(db)
    assert_accounted(db)


def assert_item_loops(db: psycopg.Connection[Any]) -> None:
    """The reuse aggregates the ingest keeps equal a recount through the loop_events view
    (SPEC §7's trips in `ts` order, whatever order the events arrived in)."""

    def rows(query: str) -> list[tuple[Any, ...]]:
        return db.execute(query).fetchall()

    assert rows(
        "SELECT gtin, serial, trips, in_loop, last_type, last_ts, last_event_id, loop_type,"
        " loop_ts, loop_event_id FROM item_loops ORDER BY 1, 2"
    ) == rows(
        "SELECT a.gtin, a.serial, coalesce(o.trips, 0)::int, coalesce(o.in_loop, false),"
        " a.type, a.ts, a.event_id, o.type, o.ts, o.event_id"
        " FROM (SELECT DISTINCT ON (gtin, serial) gtin, serial, type, ts, event_id FROM events"
        "       WHERE serial IS NOT NULL ORDER BY gtin, serial, ts DESC, event_id DESC) a"
        " LEFT JOIN (SELECT DISTINCT ON (gtin, serial) gtin, serial, type, ts, event_id,"
        "   count(*) FILTER (WHERE trip_end) OVER w AS trips,"
        "   bool_or(type <> 'returned') OVER w AS in_loop"
        "   FROM loop_events WINDOW w AS (PARTITION BY gtin, serial)"
        "   ORDER BY gtin, serial, ts DESC, event_id DESC) o USING (gtin, serial)"
        " ORDER BY 1, 2"
    )
    assert rows(
        "SELECT event_id, gtin, serial, ts, previous_ts, device_id, site_id"
        " FROM duplicate_returns ORDER BY 1"
    ) == rows(
        "SELECT event_id, gtin, serial, ts, previous_ts, device_id, site_id FROM loop_events"
        " WHERE type = 'returned' AND previous_type = 'returned' ORDER BY 1"
    )
    # A trip starts at its first `sold`, else first `filled`, after the previous trip's end.
    first = (
        "SELECT min(l.ts) FROM loop_events l WHERE l.gtin = e.gtin AND l.serial = e.serial"
        " AND l.type = '{}' AND (l.ts, l.event_id) < (e.ts, e.event_id)"
        " AND (e.prev_ts IS NULL OR (l.ts, l.event_id) > (e.prev_ts, e.prev_id))"
    )
    assert rows(
        "SELECT end_event_id, gtin, serial, started_at, ended_at FROM item_trips ORDER BY 1"
    ) == rows(
        "SELECT e.event_id, e.gtin, e.serial,"
        f" coalesce(({first.format('sold')}), ({first.format('filled')})), e.ts"
        " FROM (SELECT gtin, serial, ts, event_id, lag(ts) OVER w AS prev_ts,"
        "       lag(event_id) OVER w AS prev_id FROM loop_events WHERE trip_end"
        "       WINDOW w AS (PARTITION BY gtin, serial ORDER BY ts, event_id)) e"
        " ORDER BY 1"
    )


# Sold/returned/rejected from the raw events, under the products' packaging type and brand.
RECOUNT_RETURNS = (
    "SELECT {by}, p.packaging_type_id, p.brand,"
    " coalesce(sum(e.qty) FILTER (WHERE e.type = 'sold'), 0),"
    " coalesce(sum(e.qty) FILTER (WHERE e.type = 'returned'), 0),"
    " coalesce(sum(e.qty) FILTER (WHERE e.type = 'rejected'), 0)"
    " FROM events e JOIN products p ON p.gtin = e.gtin"
    " WHERE e.type IN ('sold', 'returned', 'rejected') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
