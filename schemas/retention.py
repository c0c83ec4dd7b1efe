"""Retention: removes raw events, their idempotency keys, the quarter-hour rollups, dead
letters and seq gaps older than LOOPTRACK_RETENTION_DAYS, in short batches beside a running
ingest. (A seq gap detected before the cutoff can no longer be filled: the events missing
from it would be refused as too old.)

Why pruning `event_ids` is safe: the ingest refuses every event older than the retention
(schemas.events.oldest_accepted: clock_skew), and the job deletes only what is older than
the retention plus PRUNE_LAG. An event whose key is gone is therefore refused, never stored
a second time, as long as a received message reaches its commit within PRUNE_LAG and
every process has the same setting. The hour, day and month rollups and the reuse
aggregates are kept: they are the long-term totals (docs/operations.md, Retention).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from schemas.named_queries import load_queries
from schemas.rollups import lock_all_shared

QUERIES = load_queries("schemas", "sql/queries/retention.sql")
log = logging.getLogger("looptrack.retention")

# Rows deleted per transaction: each batch holds its row locks and writes its WAL for well
# under a second, so ingest and queries never wait behind a long delete.
PRUNE_BATCH_ROWS = 5_000
# How far behind the ingest's acceptance bound (now - retention) the job deletes. Covers
# a received message's way to its commit (a worker retrying through a database outage)
# and clocks of workers and job that disagree.
PRUNE_LAG = timedelta(days=1)
# How often a running ingest worker prunes (s), and its first run after start (s): not
# at once, so that restarts do not prune in a loop.
PRUNE_INTERVAL_S = 3600.0
PRUNE_FIRST_DELAY_S = 60.0
# A horizon this far beyond the cutoff of this process's setting means another process
# pruned with a shorter retention.
HORIZON_TOLERANCE = timedelta(hours=1)
# Any fixed 64-bit number: one retention run at a time per database.
RETENTION_LOCK_KEY = 0x6C747265746E  # "ltretn"
_BUCKET = timedelta(minutes=15)  # the quarter-hour rollups' granularity
_BUCKET_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # their grid (date_bin's origin)
_START = datetime.min.replace(tzinfo=UTC)  # before any stored time
_NO_ID = UUID(int=0)


@dataclass(frozen=True, slots=True)
class _Rows:
    """A table pruned by prune_rows: its rows older than the cutoff by `column`."""

    table: str
    column: str
    # Whether a batch takes the item class lock slots (shared): a product change or a
    # material declaration re-reads these rows in several statements and must not see
    # some vanish.
    slots: bool


_ROLLUPS_AND_LETTERS = (
    _Rows("event_counts_15m", "bucket", slots=True),
    _Rows("material_counts_15m", "bucket", slots=True),
    _Rows("dead_letters", "received_at", slots=False),
    _Rows("seq_gaps", "detected_at", slots=False),
)
TABLES = ("events", "event_ids", *(rows.table for rows in _ROLLUPS_AND_LETTERS))
"""What the job prunes, in the order it does."""


@dataclass(slots=True)
class PruneReport:
    """What one run did."""

    cutoff: datetime
    """Rows older than this were deleted (a quarter hour)."""
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    batches: int = 0
    chunks_dropped: int = 0
    """TimescaleDB: chunks of `events` dropped whole."""
    complete: bool = False
    """False when the run was stopped before its end (the next one goes on)."""
    horizon_ahead: bool = False
    """The database had been pruned further than this process's setting: another process
    runs with a shorter LOOPTRACK_RETENTION_DAYS."""
    seconds: float = 0.0


def prune_cutoff(now: datetime, retention: timedelta) -> datetime:
    """Rows older than this are pruned at `now`: `retention` and PRUNE_LAG back, down to
    a quarter hour so a quarter-hour row goes whole, with all of its events."""
    instant = now - retention - PRUNE_LAG
    return instant - (instant - _BUCKET_ORIGIN) % _BUCKET


def prune(
    database_url: str,
    retention: timedelta,
    *,
    batch_rows: int = PRUNE_BATCH_ROWS,
    now: datetime | None = None,
    wait: bool = True,
    stop: threading.Event | None = None,
) -> PruneReport | None:
    """Delete everything older than prune_cutoff(now, retention) that the job prunes, each
    batch of at most `batch_rows` rows per table in its own transaction. One run at a time
    per database: with `wait` this one waits for another to end, else it returns None.
    Idempotent; `stop` ends it between two batches (the next run goes on from there)."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    started = time.monotonic()
    report = PruneReport(prune_cutoff(now or datetime.now(UTC), retention))
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        key = {"key": RETENTION_LOCK_KEY}
        if wait:
            conn.execute(QUERIES["wait_for_lock"], key)
        else:
            row = conn.execute(QUERIES["try_lock"], key).fetchone()
            if not (row and row[0]):
                log.info("prune skipped: another run is in progress")
                return None
        try:
            _run(conn, report, batch_rows, stop or threading.Event())
        finally:
            if not conn.broken:  # else the lock went with the connection
                conn.execute(QUERIES["unlock"], key)
    report.seconds = time.monotonic() - started
    log.info(
        "prune %s cutoff=%s %s batches=%d chunks_dropped=%d duration_ms=%.0f",
        "done" if report.complete else "stopped",
        report.cutoff.isoformat(),
        " ".join(f"{table}={count}" for table, count in report.deleted.items()),
        report.batches,
        report.chunks_dropped,
        report.seconds * 1000,
    )
    return report


def _run(
    conn: psycopg.Connection[Any], report: PruneReport, batch_rows: int, stop: threading.Event
) -> None:
    with conn.transaction():
        # Taken shared like a batch's, so a product change or declaration that re-reads the
        # quarter-hour rows (holding its slots exclusively) ends first, or reads the new
        # horizon once this commits.
        lock_all_shared(conn)
        state = conn.execute(QUERIES["advance_horizon"], {"cutoff": report.cutoff}).fetchone()
    if state is None:
        raise RuntimeError("retention_state is empty: run `looptrack db migrate`")
    horizon, done_before = state
    if horizon is not None and horizon > report.cutoff + HORIZON_TOLERANCE:
        report.horizon_ahead = True
        log.warning(
            "the database was pruned up to %s, beyond this process's cutoff %s: every "
            "process needs the same LOOPTRACK_RETENTION_DAYS (an event re-sent from between "
            "them would be stored again)",
            horizon.isoformat(),
            report.cutoff.isoformat(),
        )
    walk = _Walk(conn, report, batch_rows, stop)
    if _events_is_hypertable(conn):
        # Rows older than the last complete run's cutoff were visited: their keys are gone,
        # and what is left of them waits for its chunk to be dropped whole.
        walk.start = _START if done_before is None else done_before
        if not walk.event_ids_of_chunks():
            return
        with conn.transaction():
            dropped = conn.execute(QUERIES["drop_event_chunks"], walk.params).fetchone()
        report.chunks_dropped = dropped[0] if dropped else 0
    elif not walk.events():
        return
    for rows in _ROLLUPS_AND_LETTERS:
        if not walk.rows(rows):
            return
    with conn.transaction():
        conn.execute(QUERIES["finish"], {"cutoff": report.cutoff})
    report.complete = True


@dataclass(slots=True)
class _Walk:
    """Batches over one table after another, oldest rows first, each batch starting where
    the one before ended. Each method returns False when `stop` cut it short."""

    conn: psycopg.Connection[Any]
    report: PruneReport
    batch_rows: int
    stop: threading.Event
    # Where each table's walk begins. From the very beginning, also when an earlier run
    # already cleared it: the index entries of the rows it deleted are skipped cheaply, and
    # rows that came in older than a cutoff since (a restored backup, rows loaded by hand,
    # a process with a longer retention) are found too.
    start: datetime = _START

    @property
    def params(self) -> dict[str, Any]:
        return {"cutoff": self.report.cutoff, "rows": self.batch_rows}

    def _batch(self, query: str | sql.Composed, params: dict[str, Any], slots: bool) -> Any:
        with self.conn.transaction():
            if slots:
                lock_all_shared(self.conn)
            row = self.conn.execute(query, {**self.params, **params}).fetchone()
        self.report.batches += 1
        return row

    def events(self) -> bool:
        """Plain PostgreSQL: raw events with their idempotency keys."""
        after = self.start
        while not self.stop.is_set():
            picked, events, keys, newest = self._batch(
                QUERIES["prune_events"], {"after": after}, False
            )
            self.report.deleted["events"] += events
            self.report.deleted["event_ids"] += keys
            if picked < self.batch_rows:
                return True
            after = newest
        return False

    def event_ids_of_chunks(self) -> bool:
        """TimescaleDB: the idempotency keys of the raw events in chunks about to go."""
        after, after_id = self.start, _NO_ID
        while not self.stop.is_set():
            seen, keys, last_ts, last_id = self._batch(
                QUERIES["prune_event_ids_of_chunks"],
                {"after": after, "after_id": after_id},
                False,
            )
            self.report.deleted["event_ids"] += keys
            if seen < self.batch_rows:
                return True
            after, after_id = last_ts, last_id
        return False

    def rows(self, rows: _Rows) -> bool:
        """The rows of a table older than the cutoff."""
        query = sql.SQL(QUERIES["prune_rows"]).format(
            table=sql.Identifier(rows.table), column=sql.Identifier(rows.column)
        )
        after = self.start
        while not self.stop.is_set():
            picked, deleted, newest = self._batch(query, {"after": after}, rows.slots)
            self.report.deleted[rows.table] += deleted
            if picked < self.batch_rows:
                return True
            after = newest
        return False


def _events_is_hypertable(conn: psycopg.Connection[Any]) -> bool:
    installed = conn.execute(QUERIES["timescaledb_installed"]).fetchone()
    if not (installed and installed[0]):
        return False
    row = conn.execute(QUERIES["events_is_hypertable"]).fetchone()
    return bool(row and row[0])


def pruned_horizon(conn: psycopg.Connection[Any]) -> datetime | None:
    """Before when raw events and quarter-hour rows may be gone (None: none was ever
    pruned, history is whole)."""
    row = conn.execute(QUERIES["horizon"]).fetchone()
    return row[0] if row else None


def prune_periodically(
    database_url: str,
    retention: timedelta,
    stop: threading.Event,
    *,
    interval_s: float = PRUNE_INTERVAL_S,
    first_delay_s: float = PRUNE_FIRST_DELAY_S,
) -> threading.Thread:
    """Start a daemon thread that prunes every `interval_s` until `stop` is set, skipping a
    turn while another process prunes. Failures are logged and tried again next turn."""

    def loop() -> None:
        delay = first_delay_s
        while not stop.wait(delay):
            delay = interval_s
            try:
                prune(database_url, retention, wait=False, stop=stop)
            except psycopg.Error as exc:
                log.error("prune failed, next try in %.0fs: %s", interval_s, exc)
            except Exception:
                # The thread's boundary: a bug must show, and must not end pruning for good.
                log.exception("prune failed, next try in %.0fs", interval_s)

    thread = threading.Thread(target=loop, name="retention", daemon=True)
    thread.start()
    return thread
