"""A device's store-and-forward queue: scanned events wait here, on disk (SQLite), until
the ingest's receipt says what became of them (or, without receipts, until the broker
acknowledged them), so no outage or restart anywhere loses an event."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# SQLite page size for new queue files (bytes); the disk bound is counted in pages.
PAGE_SIZE = 4096
# Default disk bound of a queue file: 64 MiB held about 340,000 serialised returns
# without attrs (measured).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY,  -- the device's event counter, sent as `seq`
    body     TEXT NOT NULL,        -- the event as compact JSON, `seq` included
    event_id TEXT                  -- canonical UUID text, as receipts name the event
);
CREATE TABLE IF NOT EXISTS counter (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO counter (id, last_seq) VALUES (1, 0);
"""


# Ids per DELETE: below SQLite's bound on parameters (999 in older builds).
_IDS_PER_STATEMENT = 500


def canonical_event_id(event_id: str) -> str:
    """The event id as receipts write it (lower-case, hyphenated); unchanged when it is
    not a UUID (the ingest dead-letters such an event, naming it as sent)."""
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        return event_id


class QueueFull(RuntimeError):
    """The queue reached its disk bound: the event was NOT recorded. A device should stop
    accepting containers (as an RVM does when its bin is full) until the broker is back."""


@dataclass(frozen=True)
class Queued:
    """One waiting event."""

    seq: int
    body: str


class Outbox:
    """Events in `seq` order, persisted before `append` returns.

    `path=None` keeps the queue in memory (simulators, tests): same behaviour, no
    durability across restarts. Thread-safe."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ValueError("synchronous must be FULL, NORMAL or OFF")
        self.path = path
        self._lock = threading.Lock()
        target = ":memory:" if path is None else str(path)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        if path is not None:
            conn.execute("PRAGMA journal_mode = WAL")
        # FULL: an event survives a power cut once scan() returned; NORMAL: a crash of
        # the process only.
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # The write-ahead log is checkpointed every 1,000 pages; keep it truncated after.
        conn.execute("PRAGMA journal_size_limit = 4194304")
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        if "event_id" not in columns:  # a queue file written before receipts
            conn.execute("ALTER TABLE outbox ADD COLUMN event_id TEXT")
            for seq, body in conn.execute("SELECT seq, body FROM outbox").fetchall():
                conn.execute(
                    "UPDATE outbox SET event_id = ? WHERE seq = ?",
                    (canonical_event_id(json.loads(body)["event_id"]), seq),
                )
        conn.execute("CREATE INDEX IF NOT EXISTS outbox_event_id ON outbox (event_id)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        used = conn.execute("PRAGMA page_count").fetchone()[0]
        # SQLite refuses to grow the file past max_page_count: the disk bound is exact.
        conn.execute(f"PRAGMA max_page_count = {max(max_bytes // page_size, used + 1)}")
        self._conn = conn

    def append(self, build: Callable[[int], str], event_id: str) -> Queued:
        """Take the next seq, build the event's JSON with it and store it, atomically.
        Raises QueueFull when the disk bound is reached (nothing stored, seq not used)."""
        event_id = canonical_event_id(event_id)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                seq = conn.execute("SELECT last_seq + 1 FROM counter").fetchone()[0]
                body = build(seq)
                conn.execute(
                    "INSERT INTO outbox (seq, body, event_id) VALUES (?, ?, ?)",
                    (seq, body, event_id),
                )
                conn.execute("UPDATE counter SET last_seq = ?", (seq,))
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:  # SQLite may have rolled back by itself
                    conn.execute("ROLLBACK")
                if "full" in str(exc):
                    # self._lock is held: count here, not through pending().
                    waiting = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
                    raise QueueFull(
                        f"store-and-forward queue {self.path or '(memory)'} is full "
                        f"({waiting} events wait for the broker)"
                    ) from None
                raise
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return Queued(seq, body)

    def after(self, seq: int, limit: int) -> list[Queued]:
        """Up to `limit` waiting events with a seq above `seq`, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        return [Queued(s, b) for s, b in rows]

    def remove_through(self, first: int, last: int) -> int:
        """Forget events first..last (inclusive): the broker acknowledged them. Returns
        how many were still queued."""
        with self._lock:
            cursor = self._conn.execute(
                "DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last)
            )
            return cursor.rowcount

    def between(self, first: int, last: int) -> list[Queued]:
        """The events of seq first..last (inclusive) still waiting, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, body FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq",
                (first, last),
            ).fetchall()
        return [Queued(s, b) for s, b in rows]

    def remove_events(self, event_ids: list[str]) -> int:
        """Forget these events (the ingest's receipt named them). Returns how many were
        still queued; ids not in the queue (an earlier receipt took them) are ignored."""
        ids = [canonical_event_id(event_id) for event_id in event_ids]
        removed = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(ids), _IDS_PER_STATEMENT):
                    chunk = ids[start : start + _IDS_PER_STATEMENT]
                    cursor = self._conn.execute(
                        f"DELETE FROM outbox WHERE event_id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                    removed += cursor.rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return removed

    def pending(self) -> int:
        """Events not yet acknowledged by the broker."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def last_seq(self) -> int:
        """The seq given to the latest event ever appended (0 before the first)."""
        with self._lock:
            return int(self._conn.execute("SELECT last_seq FROM counter").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
