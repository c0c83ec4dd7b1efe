"""`looptrack db migrate`: creates the database, applies the schema we expect, and is safe
to run twice in a row and twice at the same time."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from schemas.migrations import load_migrations, migrate
from tests.conftest import PG_SERVER, ROOT, create_database, drop_database
from tests.factories import GTIN_COLA, GTIN_CRATE, event, register_asset_type, seed_registry
from tests.older_schema import before_item_class
from tests.storing import store

EXPECTED_COLUMNS = {
    "packaging_types": {
        "id",
        "name",
        "material",
        "reusable",
        "target_trips",
        "deposit",
        "weight_g",
        "recycled_content_pct",
        "renewable_content_pct",
        "fibre_based",
        "created_at",
        "updated_at",
    },
    "products": {
        "item_class",
        "packaging_type_id",
        "brand",
        "name",
        "recycled_content_pct",
        "renewable_content_pct",
        "fibre_based",
        "created_at",
        "updated_at",
    },
    "sites": {"id", "name", "kind", "lat", "lon", "created_at", "updated_at"},
    "devices": {"id", "site_id", "kind", "created_at", "updated_at"},
    "device_state": {"device_id", "last_seen", "online", "status_at", "max_seq"},
    "seq_gaps": {"device_id", "gap_from", "gap_to", "detected_at"},
    "items": {"item_class", "serial", "batch_id", "commissioned_at"},
    "events": {
        "event_id",
        "ts",
        "received_at",
        "device_id",
        "site_id",
        "type",
        "item_class",
        "serial",
        "qty",
        "seq",
        "reason",
        "stream",
        "weight_g",
        "attrs",
    },
    "event_ids": {"event_id", "ts"},
    "event_counts_15m": {"bucket", "site_id", "item_class", "type", "qty", "events"},
    "device_counts_daily": {"day", "device_id", "events"},
    "dead_letters": {
        "id",
        "received_at",
        "topic",
        "device_id",
        "reason",
        "detail",
        "batch_index",
        "payload",
        "payload_size",
        "payload_sha256",
        "replayed_at",
    },
    "ingest_counters": {
        "worker",
        "received",
        "stored",
        "duplicates",
        "dead_lettered",
        "updated_at",
    },
    "schema_migrations": {"version", "applied_at"},
    "item_loops": {
        "item_class",
        "serial",
        "trips",
        "in_loop",
        "last_type",
        "last_ts",
        "last_event_id",
        "loop_type",
        "loop_ts",
        "loop_event_id",
        "open_sold",
        "open_filled",
    },
    "item_trips": {"end_event_id", "item_class", "serial", "started_at", "ended_at", "days"},
    "trip_length_counts": {"packaging_type", "brand", "unit_s", "bucket", "trips", "length_s"},
    "duplicate_returns": {
        "event_id",
        "item_class",
        "serial",
        "ts",
        "previous_ts",
        "device_id",
        "site_id",
    },
    "reject_counts_daily": {"day", "item_class", "reason", "qty", "events"},
    "reject_counts_monthly": {"month", "item_class", "reason", "qty", "events"},
    "rollup_zone": {"only_row", "zone"},
    "return_counts_daily": {"day", "packaging_type", "brand", "sold", "returned", "rejected"},
    "return_counts_hourly": {"hour", "packaging_type", "brand", "sold", "returned", "rejected"},
    "site_return_counts_daily": {
        "site_id",
        "day",
        "packaging_type",
        "brand",
        "sold",
        "returned",
        "rejected",
    },
    "label_batches": {"id", "item_class", "count", "format", "created_by", "created_at"},
    "broker_accounts": {
        "username",
        "role",
        "device_id",
        "password_hash",
        "created_at",
        "revoked_at",
    },
    "api_keys": {
        "id",
        "name",
        "role",
        "brand",
        "device_id",
        "key_hash",
        "created_at",
        "revoked_at",
        "expires_at",
        "last_used_at",
    },
    "material_declarations": {
        "item_class",
        "declared_from",
        "material",
        "weight_g",
        "recycled_content_pct",
        "renewable_content_pct",
        "fibre_based",
        "saved_at",
    },
    "sorting_streams": {"stream", "outcome", "material", "name", "updated_at"},
    "circularity_targets": {
        "id",
        "name",
        "metric",
        "materials",
        "value",
        "year",
        "baseline_value",
        "baseline_year",
        "source",
        "updated_at",
    },
    "material_counts_15m": {
        "bucket",
        "item_class",
        "declared_from",
        "type",
        "stream",
        "qty",
        "measured_g",
        "measured_qty",
    },
    "material_grams_15m": {
        "bucket",
        "item_class",
        "packaging_type",
        "brand",
        "material",
        "type",
        "stream",
        "qty",
        "grams",
        "recycled_g",
        "renewable_g",
        "fibre_g",
        "unweighed_qty",
    },
    "material_grams_daily": {
        "day",
        "packaging_type",
        "brand",
        "material",
        "type",
        "stream",
        "qty",
        "grams",
        "recycled_g",
        "renewable_g",
        "fibre_g",
        "unweighed_qty",
    },
    "material_grams_hourly": {
        "hour",
        "packaging_type",
        "brand",
        "material",
        "type",
        "stream",
        "qty",
        "grams",
        "recycled_g",
        "renewable_g",
        "fibre_g",
        "unweighed_qty",
    },
    "retention_state": {"only_row", "horizon", "done_before"},
    "page_sessions": {"id_hash", "key_id", "created_at", "expires_at"},
}


ALL_MIGRATIONS = (
    "0001_init, 0002_api_keys, 0003_loop_events, 0004_daily_rollups, 0005_return_counts_daily, "
    "0006_return_counts_hourly, 0007_label_batches, 0008_broker_accounts, "
    "0009_ingest_received, 0010_item_loops, 0011_reject_counts, 0012_grai_item_classes, "
    "0013_bounded_dead_letters, 0014_material_flows, 0015_material_grams, 0016_retention, "
    "0017_trip_day_counts, 0018_page_sessions, 0019_api_key_lifecycle, "
    "0020_drop_loop_events, 0021_item_class"
)


def columns(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


@pytest.fixture
def missing_db() -> Iterator[str]:
    """The URL of a database that does not exist yet (dropped afterwards)."""
    name = f"lt_mig_{uuid.uuid4().hex[:10]}"
    yield make_conninfo(PG_SERVER, dbname=name)
    drop_database(name)


def run_migrate(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "looptrack", "db", "migrate"],
        env={"LOOPTRACK_DATABASE_URL": url, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_migrate_twice_in_a_row_creates_then_does_nothing(missing_db: str) -> None:
    first = run_migrate(missing_db)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert f"applied: {ALL_MIGRATIONS}" in out
    second = run_migrate(missing_db)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "schema is up to date" in out
    assert columns(missing_db) == EXPECTED_COLUMNS


def test_migrate_twice_at_the_same_time(missing_db: str) -> None:
    runs = [run_migrate(missing_db) for _ in range(2)]
    results = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    outputs = sorted(out.strip() for out, _ in results)
    assert outputs == [
        f"applied: {ALL_MIGRATIONS}",
        "schema is up to date",
    ]
    with psycopg.connect(missing_db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in load_migrations()]
    assert columns(missing_db) == EXPECTED_COLUMNS


def test_unreachable_database_is_a_clear_error() -> None:
    run = run_migrate("postgresql://postgres@127.0.0.1:1/looptrack")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1
    assert err.startswith("error: ")
    assert "Traceback" not in err


def timescaledb_available() -> bool:
    with psycopg.connect(PG_SERVER) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
            " AND current_setting('shared_preload_libraries') LIKE '%%timescaledb%%'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.skipif(not timescaledb_available(), reason="TimescaleDB is not installed here")
def test_timescaledb_and_plain_branches_create_the_same_columns() -> None:
    names = [f"lt_ts_{uuid.uuid4().hex[:8]}", f"lt_plain_{uuid.uuid4().hex[:8]}"]
    try:
        urls = [create_database(name) for name in names]
        migrate(urls[0], timescaledb="auto")
        migrate(urls[1], timescaledb="off")
        assert columns(urls[0]) == columns(urls[1]) == EXPECTED_COLUMNS
        with psycopg.connect(urls[0]) as conn:
            row: Any = conn.execute(
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = 'events'"
            ).fetchone()
        assert row[0] == 1
    finally:
        for name in names:
            drop_database(name)


def test_grai_migration_keeps_the_data_and_admits_grai_keys(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, ["rvm-1"])
    crate = GTIN_CRATE.zfill(14)
    store(db, "rvm-1", [event(kind, gtin=crate, serial="C1") for kind in ("sold", "returned")])
    store(db, "rvm-1", [event("sold", gtin=GTIN_COLA, qty=24)])
    tables = ["products", "items", "events", "item_loops", "item_trips", "event_counts_15m"]
    before = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}

    # The database as it was before 0012: GTIN-14 keys only, in columns named gtin.
    before_item_class(db)
    for table in ("products", "items"):
        db.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_gtin_check,"
            f" ADD CONSTRAINT {table}_gtin_check CHECK (gtin ~ '^[0-9]{{14}}$')"
        )
    db.execute("DELETE FROM schema_migrations WHERE version = '0012_grai_item_classes'")
    grai_row = ("8003" + crate, "crate-24", "fjord", "Pool crate")
    insert = "INSERT INTO products (gtin, packaging_type_id, brand, name) VALUES (%s, %s, %s, %s)"
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(insert, grai_row)

    assert migrate(db_url) == ["0012_grai_item_classes", "0021_item_class"]
    assert {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables} == before
    db.execute(insert.replace("gtin", "item_class"), grai_row)
    db.execute("INSERT INTO items (item_class, serial) VALUES (%s, 'C1')", (grai_row[0],))
    for bad in ("8003" + crate[:13], "9003" + crate, crate + "1"):
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute("INSERT INTO items (item_class, serial) VALUES (%s, 'X')", (bad,))


ITEM_CLASS_TABLES = [
    "products", "label_batches", "items", "events", "event_counts_15m", "reject_counts_daily",
    "reject_counts_monthly", "item_loops", "item_trips", "duplicate_returns",
    "material_declarations", "material_counts_15m", "material_grams_15m",
]  # fmt: skip


def test_item_class_migration_keeps_the_data_under_the_new_names(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, ["rvm-1"])
    crate = GTIN_CRATE.zfill(14)
    asset = "8003" + crate
    register_asset_type(db, crate)
    batch = uuid.uuid4()
    db.execute(
        "INSERT INTO label_batches (id, item_class, count, format, created_by)"
        " VALUES (%s, %s, 1, 'pdf', 'test')",
        (batch, asset),
    )
    db.execute(
        "INSERT INTO items (item_class, serial, batch_id) VALUES (%s, 'C1', %s)", (asset, batch)
    )
    returns = [event(kind, gtin=crate, serial="C1") for kind in ("sold", "returned", "returned")]
    store(db, "rvm-1", returns)
    by_grai = {key: value for key, value in event("returned").items() if key != "gtin"}
    store(db, "rvm-1", [{**by_grai, "grai": crate + "C1"}])
    store(
        db,
        "rvm-1",
        [
            event("sold", gtin=GTIN_COLA, qty=24),
            event("rejected", gtin=GTIN_COLA, reason="damaged"),
        ],
    )
    db.execute("SELECT declare_materials(ARRAY[%s], NULL)", (GTIN_COLA.zfill(14),))
    rows = {
        t: db.execute(f"SELECT r::text FROM {t} r ORDER BY 1").fetchall() for t in ITEM_CLASS_TABLES
    }
    assert all(rows.values()), [t for t, found in rows.items() if not found]

    # The database at 0020: the same rows, in columns named gtin.
    before_item_class(db)
    assert "item_class" not in str(columns(db_url))
    assert migrate(db_url) == ["0021_item_class"]
    after = columns(db_url)
    for table in ITEM_CLASS_TABLES:
        assert "item_class" in after[table] and "gtin" not in after[table], table
    assert {
        t: db.execute(f"SELECT r::text FROM {t} r ORDER BY 1").fetchall() for t in ITEM_CLASS_TABLES
    } == rows
    # What reads and keeps them works on the renamed columns: a product moved takes its
    # counts along, and the next batch counts into the same rows.
    db.execute("UPDATE products SET brand = 'other' WHERE item_class = %s", (asset,))
    store(db, "rvm-1", [event("sold", gtin=GTIN_COLA, qty=1)])
    assert db.execute(
        "SELECT sum(qty) FROM event_counts_15m WHERE item_class = %s AND type = 'sold'",
        (GTIN_COLA.zfill(14),),
    ).fetchone() == (25,)


def test_bounded_dead_letters_migration_backfills_and_cuts_oversized_payloads(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    small = b'{"event_id": "not closed'
    large = bytes(range(256)) * 4096  # 1 MiB, as a broker allowing it would have passed
    # The database as it was before 0013: payloads kept whole, no size or digest.
    db.execute(
        "ALTER TABLE dead_letters DROP COLUMN payload_size, DROP COLUMN payload_sha256;"
        " DELETE FROM schema_migrations WHERE version = '0013_bounded_dead_letters'"
    )
    insert = (
        "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload)"
        " VALUES (now(), 't/devices/rvm-1/events', 'rvm-1', %s, 'd', %s)"
    )
    for reason, payload in (("invalid_json", small), ("too_large", large)):
        db.execute(insert, (reason, payload))

    assert migrate(db_url) == ["0013_bounded_dead_letters"]
    rows = db.execute(
        "SELECT reason, payload, payload_size, payload_sha256 FROM dead_letters ORDER BY id"
    ).fetchall()
    assert [(r, bytes(p), n, bytes(d)) for r, p, n, d in rows] == [
        ("invalid_json", small, len(small), hashlib.sha256(small).digest()),
        ("too_large", large[:4096], len(large), hashlib.sha256(large).digest()),
    ]
    # New rows must say what they keep of what.
    with pytest.raises(psycopg.errors.NotNullViolation):
        db.execute(insert, ("schema", small))
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO dead_letters (received_at, topic, reason, detail, payload, payload_size,"
            " payload_sha256) VALUES (now(), 't', 'schema', 'd', %s, 1, sha256(%s))",
            (small, small),
        )


def trip_seconds_of_a_day(db: psycopg.Connection[Any]) -> Any:
    row = db.execute("SELECT trip_seconds(now() - interval '1 day', now())").fetchone()
    assert row is not None
    return row[0]


BROKEN_TRIP_SECONDS = (
    "CREATE OR REPLACE FUNCTION trip_seconds(started_at timestamptz, ended_at timestamptz)"
    " RETURNS numeric LANGUAGE sql IMMUTABLE RETURN 7"
)


def test_every_migrate_applies_the_functions_file_again(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    db.execute(BROKEN_TRIP_SECONDS)
    assert trip_seconds_of_a_day(db) == 7
    assert migrate(db_url) == []
    assert trip_seconds_of_a_day(db) == 86400


def test_a_database_migrated_by_newer_code_keeps_its_functions(
    db: psycopg.Connection[Any], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An older release's migrate (a process of it starting during a rolling deployment)
    must not put back functions that newer code replaced."""
    db.execute("INSERT INTO schema_migrations (version) VALUES ('9999_from_newer_code')")
    db.execute(BROKEN_TRIP_SECONDS)
    assert migrate(db_url) == []
    assert trip_seconds_of_a_day(db) == 7
    assert "database is newer than this code versions=9999_from_newer_code" in caplog.text


def test_return_counts_of_counts_sold_returned_and_rejected_only(
    db: psycopg.Connection[Any],
) -> None:
    rows = {
        kind: db.execute("SELECT * FROM return_counts_of(%s, 5)", (kind,)).fetchall()
        for kind in ("sold", "returned", "rejected", "sorted", "filled", "commissioned")
    }
    assert rows == {
        "sold": [(5, 0, 0)],
        "returned": [(0, 5, 0)],
        "rejected": [(0, 0, 5)],
        "sorted": [],
        "filled": [],
        "commissioned": [],
    }


def test_return_counts_of_is_inlined_into_the_statement_that_uses_it(
    db: psycopg.Connection[Any],
) -> None:
    """The ingest's batch statement uses it on every batch: the planner must expand it in
    place (an SQL function that is neither STRICT nor VOLATILE), not call it per row."""
    plan = "\n".join(
        row[0]
        for row in db.execute(
            "EXPLAIN VERBOSE SELECT sum(r.sold), sum(r.returned), sum(r.rejected)"
            " FROM unnest(ARRAY['sold', 'sorted'], ARRAY[2, 3]::bigint[]) AS c (type, qty)"
            " CROSS JOIN LATERAL return_counts_of(c.type, c.qty) r"
        )
    )
    assert "return_counts_of" not in plan
    assert "CASE c.type WHEN 'sold'::text THEN c.qty" in plan
