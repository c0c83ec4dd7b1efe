"""Retention (schemas/retention.py, docs/operations.md): what is older than the retention
and one day more goes from raw events, event ids, the quarter-hour rollups and dead letters,
in bounded batches; the hour, day and month rollups and the reuse aggregates keep their
totals; the ingest's acceptance bound stays a day ahead of what is pruned; operations
that re-read history from the beginning refuse to cross what was pruned."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from schemas.events import Event, validation_context
from schemas.migrations import migrate
from schemas.registry import DeclarationError, declare_materials
from schemas.retention import RETENTION_LOCK_KEY, prune, prune_periodically
from schemas.rollups import lock_products
from tests.conftest import create_database, drop_database, wait_until
from tests.factories import GTIN_COLA, GTIN_CRATE, count, event, seed_registry
from tests.schemas.test_migrations import timescaledb_available
from tests.storing import store

# Events pruned row by row: the plain-PostgreSQL branch, also on a server with
# TimescaleDB, where a hypertable drops whole chunks instead (tested apart, on a database
# of its own).
pytestmark = pytest.mark.plain_postgres


RETENTION = timedelta(days=10)
# What docs/operations.md promises: rows go a day after the ingest stops accepting them,
# and whole quarter hours at a time.
LAG = timedelta(days=1)
QUARTER = timedelta(minutes=15)
# Rollups and aggregates that hold the long-term totals: pruning leaves them as they are.
LONG_TERM = [
    "return_counts_daily",
    "site_return_counts_daily",
    "return_counts_hourly",
    "reject_counts_daily",
    "reject_counts_monthly",
    "material_grams_daily",
    "material_grams_hourly",
    "device_counts_daily",
    "item_loops",
    "item_trips",
    "duplicate_returns",
]


def quarter_floor(instant: datetime) -> datetime:
    return instant.replace(minute=instant.minute - instant.minute % 15, second=0, microsecond=0)


def moment(ts: datetime, serial: str) -> list[dict[str, Any]]:
    """Four events at one instant: 5 bottles sold, one returned and one rejected, and a
    crate's trip ending. 4 rows of event_counts_15m (GTIN and type), 3 of
    material_counts_15m (sold and returned are weighed, rejected is not)."""
    return [
        event("sold", ts=ts, qty=5),
        event("returned", ts=ts),
        event("rejected", ts=ts, reason="damaged"),
        event("returned", gtin=GTIN_CRATE, serial=serial, ts=ts),
    ]


def dead_letter(db: psycopg.Connection[Any], received_at: datetime) -> None:
    db.execute(
        "INSERT INTO dead_letters (received_at, topic, device_id, reason, detail, payload,"
        " payload_size, payload_sha256) VALUES (%s, 't', 'rvm-1', 'schema', 'd', 'x', 1,"
        " sha256('x'))",
        (received_at,),
    )


def seq_gap(db: psycopg.Connection[Any], gap_from: int, detected_at: datetime) -> None:
    db.execute(
        "INSERT INTO seq_gaps (device_id, gap_from, gap_to, detected_at)"
        " VALUES ('rvm-1', %s, %s, %s)",
        (gap_from, gap_from + 2, detected_at),
    )


def long_term(db: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY {t}::text").fetchall() for t in LONG_TERM}


def ids(db: psycopg.Connection[Any], query: str) -> set[str]:
    return {str(row[0]) for row in db.execute(query)}


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_prune_removes_what_is_older_than_the_retention_and_a_day(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    # Gone: well past the cutoff, and two hours past it. Kept: older than the ingest
    # accepts (10 days) but inside the day of lag, and three hours old.
    gone_at = [now - timedelta(days=40), now - RETENTION - LAG - timedelta(hours=2)]
    kept_at = [now - RETENTION - timedelta(hours=20), now - timedelta(hours=3)]
    gone, kept = [], []
    for number, ts in enumerate(gone_at + kept_at):
        batch = moment(ts, f"C{number}")
        store(db, "rvm-1", batch)
        (gone if ts in gone_at else kept).extend(batch)
    dead_letter(db, now - timedelta(days=40))
    dead_letter(db, now - timedelta(hours=3))
    seq_gap(db, 10, now - timedelta(days=40))
    seq_gap(db, 20, now - timedelta(hours=3))
    before = long_term(db)

    report = prune(db_url, RETENTION, now=now)

    assert report is not None and report.complete
    assert report.cutoff == quarter_floor(now - RETENTION - LAG)
    assert report.deleted == {
        "events": 8,
        "event_ids": 8,
        "event_counts_15m": 2 * 4,
        "material_counts_15m": 2 * 3,
        "dead_letters": 1,
        "seq_gaps": 1,
    }
    kept_ids = {e["event_id"] for e in kept}
    assert ids(db, "SELECT event_id FROM events") == kept_ids
    assert ids(db, "SELECT event_id FROM event_ids") == kept_ids
    kept_buckets = {quarter_floor(ts) for ts in kept_at}
    for table, rows in (("event_counts_15m", 4), ("material_counts_15m", 3)):
        buckets = db.execute(f"SELECT bucket FROM {table}").fetchall()
        assert {b for (b,) in buckets} == kept_buckets
        assert len(buckets) == rows * len(kept_at)
    assert db.execute("SELECT received_at FROM dead_letters").fetchall() == [
        (now - timedelta(hours=3),)
    ]
    assert db.execute("SELECT gap_from, detected_at FROM seq_gaps").fetchall() == [
        (20, now - timedelta(hours=3))
    ]
    # The totals of every day, hour and month, and every item's trips, are still there.
    assert long_term(db) == before
    assert count(db, "SELECT sum(sold) FROM return_counts_daily") == 5 * 4
    assert count(db, "SELECT count(*) FROM item_trips") == 4


def test_a_second_run_finds_nothing_to_do(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    store(db, "rvm-1", moment(now - timedelta(days=30), "C1"))
    first = prune(db_url, RETENTION, now=now)
    second = prune(db_url, RETENTION, now=now + timedelta(minutes=5))
    assert first is not None and first.deleted["events"] == 4
    assert second is not None and second.complete
    assert set(second.deleted.values()) == {0}


class StopAfter(threading.Event):
    """A stop that is set once the job has asked `checks` times (once before each batch)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_prune_deletes_in_batches_and_a_stopped_run_is_finished_by_the_next(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    old = now - timedelta(days=30)
    store(db, "rvm-1", [event("returned", ts=old + timedelta(seconds=i)) for i in range(25)])
    store(db, "rvm-1", [event("returned", ts=now - timedelta(hours=1))])

    stopped = prune(db_url, RETENTION, now=now, batch_rows=3, stop=StopAfter(4))
    # Four batches of at most three events: twelve gone, thirteen left for the next run.
    assert stopped is not None and not stopped.complete
    assert (stopped.batches, stopped.deleted["events"], stopped.deleted["event_ids"]) == (
        4,
        12,
        12,
    )
    assert count(db, "SELECT count(*) FROM events") == 14
    assert count(db, "SELECT count(*) FROM event_ids") == 14

    finished = prune(db_url, RETENTION, now=now, batch_rows=3)
    assert finished is not None and finished.complete
    assert finished.deleted["events"] == 13
    # 13 events: 5 batches (the last one short); then one short batch per other table.
    assert finished.batches == 5 + 4
    assert count(db, "SELECT count(*) FROM events") == 1
    assert count(db, "SELECT count(*) FROM event_ids") == 1


def test_an_event_keeps_its_id_for_a_day_after_the_ingest_stops_accepting_it(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    seed_registry(db, ["rvm-1"])
    ts = quarter_floor(datetime.now(UTC) - timedelta(days=20)) + timedelta(minutes=7)
    sent = event("returned", ts=ts)
    store(db, "rvm-1", [sent])
    last_accepted = ts + RETENTION  # the receiver's clock at which ts is the oldest accepted

    def accepted(receiver_now: datetime) -> bool:
        context = validation_context("rvm-1", receiver_now, retention=RETENTION)
        try:
            Event.model_validate(sent, context=context)
        except ValidationError as exc:
            assert [e["type"] for e in exc.errors()] == ["clock_skew"]
            return False
        return True

    assert accepted(last_accepted)
    assert not accepted(last_accepted + timedelta(microseconds=1))
    for now in (last_accepted, last_accepted + LAG - timedelta(minutes=1)):
        prune(db_url, RETENTION, now=now)
        assert count(db, "SELECT count(*) FROM event_ids") == 1, now
    # Its quarter hour goes whole once the cutoff (a quarter hour) has passed its end.
    prune(db_url, RETENTION, now=ts - timedelta(minutes=7) + QUARTER + RETENTION + LAG)
    assert count(db, "SELECT count(*) FROM event_ids") == 0
    assert count(db, "SELECT count(*) FROM event_counts_15m") == 0


def test_events_older_than_the_configured_retention_are_clock_skew() -> None:
    # The default: 1827 days, five years with their leap days.
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    oldest = datetime(2020, 5, 31, 12, 0, tzinfo=UTC)
    context = validation_context("rvm-1", now)
    assert Event.model_validate(event(ts=oldest), context=context).ts == oldest
    with pytest.raises(ValidationError) as refused:
        Event.model_validate(event(ts=oldest - timedelta(milliseconds=1)), context=context)
    [error] = refused.value.errors()
    assert error["type"] == "clock_skew"
    assert "before 2020-05-31T12:00:00+00:00" in error["msg"]
    assert "kept 1827 days (LOOPTRACK_RETENTION_DAYS)" in error["msg"]


def test_a_run_waits_for_another_or_skips_its_turn(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    store(db, "rvm-1", [event("returned", ts=now - timedelta(days=30)) for _ in range(6)])
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK_KEY,))
        assert prune(db_url, RETENTION, now=now, wait=False) is None
        assert count(db, "SELECT count(*) FROM events") == 6
        waiting: list[Any] = []
        runner = threading.Thread(target=lambda: waiting.append(prune(db_url, RETENTION)))
        runner.start()
        runner.join(1.0)
        assert runner.is_alive() and count(db, "SELECT count(*) FROM events") == 6
        other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK_KEY,))
        runner.join(30)
    assert waiting[0].deleted["events"] == 6


def test_concurrent_runs_and_ingest_each_do_their_part(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    for day in range(20, 40):
        store(db, "rvm-1", moment(now - timedelta(days=day), f"C{day}"))
    reports: list[Any] = []
    errors: list[BaseException] = []
    recent: list[dict[str, Any]] = []

    def run(target: Any) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        thread = threading.Thread(target=guarded)
        thread.start()
        return thread

    def ingest() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for i in range(15):
                batch = moment(now - timedelta(minutes=i), f"N{i}")
                store(conn, "rvm-1", batch)
                recent.extend(batch)

    threads = [run(ingest)] + [
        run(lambda: reports.append(prune(db_url, RETENTION, batch_rows=2))) for _ in range(2)
    ]
    for thread in threads:
        thread.join(120)
    assert not errors
    # One run after the other: together they pruned the 20 old moments exactly once.
    assert sum(r.deleted["events"] for r in reports) == 20 * 4
    assert sum(r.deleted["event_counts_15m"] for r in reports) == 20 * 4
    assert ids(db, "SELECT event_id FROM events") == {e["event_id"] for e in recent}
    assert ids(db, "SELECT event_id FROM event_ids") == {e["event_id"] for e in recent}
    assert count(db, "SELECT sum(qty) FROM event_counts_15m WHERE type = 'sold'") == 15 * 5


def test_a_declaration_cannot_reach_back_before_what_was_pruned(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    gtin = GTIN_COLA.zfill(14)
    declare = "SELECT declare_materials(ARRAY[%s], NULL)"
    db.execute(declare, (gtin,))  # its first declaration, for all time
    store(db, "rvm-1", moment(now - timedelta(days=30), "C1"))
    long_ago = now - timedelta(days=60)

    def declare_from(instant: datetime) -> None:
        with psycopg.connect(db_url) as conn:
            lock_products(conn, [gtin])
            declare_materials(conn, [gtin], instant)

    declare_from(long_ago)  # nothing pruned yet: all counts can be re-filed
    report = prune(db_url, RETENTION, now=now)
    assert report is not None
    with pytest.raises(DeclarationError) as refused:
        declare_from(long_ago)
    cutoff = report.cutoff.isoformat()
    assert f"is before {cutoff}" in str(refused.value)
    assert f"declare from {cutoff} or later" in str(refused.value)
    declare_from(report.cutoff)
    assert (
        count(
            db, "SELECT count(*) FROM material_declarations WHERE declared_from = %s", report.cutoff
        )
        == 1
    )


def test_no_history_pruned_leaves_the_horizon_unset(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    # A deployment younger than its retention: the job runs, nothing is old enough.
    seed_registry(db, ["rvm-1"])
    store(db, "rvm-1", moment(now - timedelta(days=2), "C1"))
    dead_letter(db, now - timedelta(days=40))
    report = prune(db_url, RETENTION, now=now)
    assert report is not None and report.deleted["dead_letters"] == 1
    assert db.execute("SELECT horizon FROM retention_state").fetchone() == (None,)


@pytest.fixture
def own_db() -> Any:
    name = f"lt_own_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


def test_a_new_time_zone_is_refused_once_history_was_pruned(own_db: str) -> None:
    # A database of its own: the template's zone is UTC, and this one moves.
    migrate(own_db, timezone="UTC")
    now = datetime.now(UTC)
    with psycopg.connect(own_db, autocommit=True) as db:
        seed_registry(db, ["rvm-1"])
        store(db, "rvm-1", moment(now - timedelta(days=30), "C1"))
        store(db, "rvm-1", moment(now - timedelta(days=1), "C2"))
        migrate(own_db, timezone="Europe/Oslo")  # whole history: rebuilt in the new zone
        prune(own_db, RETENTION)
        before = long_term(db)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
            migrate(own_db, timezone="UTC")
        message = refused.value.diag.message_primary or ""
        assert message.startswith(
            "LOOPTRACK_TIMEZONE=UTC: rebuilding the day rollups kept in Europe/Oslo needs every"
            " raw event and quarter-hour count, but those before "
        )
        assert message.endswith("; keep LOOPTRACK_TIMEZONE=Europe/Oslo")
        assert db.execute("SELECT zone FROM rollup_zone").fetchone() == ("Europe/Oslo",)
        assert long_term(db) == before


def test_periodic_pruning_runs_every_interval_until_stopped(
    db: psycopg.Connection[Any], db_url: str, now: datetime
) -> None:
    seed_registry(db, ["rvm-1"])
    store(db, "rvm-1", moment(now - timedelta(days=30), "C1"))
    stop = threading.Event()
    thread = prune_periodically(db_url, RETENTION, stop, interval_s=0.2, first_delay_s=0.2)
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 0, 20, "the first run")
    store(db, "rvm-1", moment(now - timedelta(days=31), "C2"))  # e.g. loaded by hand
    wait_until(lambda: count(db, "SELECT count(*) FROM events") == 0, 20, "a later run")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_periodic_pruning_outlives_a_database_outage(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    unreachable = "postgresql://postgres@127.0.0.1:1/looptrack"
    thread = prune_periodically(unreachable, RETENTION, stop, interval_s=0.1, first_delay_s=0)
    try:
        wait_until(lambda: caplog.text.count("prune failed, next try in 0s") >= 2, 30, "two tries")
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.skipif(not timescaledb_available(), reason="TimescaleDB is not installed here")
def test_with_timescaledb_old_chunks_go_whole_after_their_ids(own_db: str) -> None:
    migrate(own_db, timescaledb="auto")
    now = datetime.now(UTC)
    with psycopg.connect(own_db, autocommit=True) as db:
        seed_registry(db, ["rvm-1"])
        old = moment(now - timedelta(days=40), "C1")
        recent = moment(now - timedelta(hours=3), "C2")
        store(db, "rvm-1", old)
        store(db, "rvm-1", recent)
        report = prune(own_db, RETENTION, now=now, batch_rows=3)
        assert report is not None and report.complete
        assert report.chunks_dropped == 1
        assert report.deleted["event_ids"] == len(old)
        kept = {e["event_id"] for e in recent}
        assert ids(db, "SELECT event_id FROM events") == kept
        assert ids(db, "SELECT event_id FROM event_ids") == kept
