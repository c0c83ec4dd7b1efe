"""When each API key was last used: noted at most once per key every
LAST_USED_PRECISION_S (5 min), in a short transaction of its own on a thread of its own, so
a request never waits for the write and never fails by it, and an API on a read-only
replica (which cannot write) serves its requests all the same."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg_pool import ConnectionPool

from schemas.api_keys import LAST_USED_PRECISION_S, record_use

log = logging.getLogger(__name__)

# Keys whose next write this process remembers at most; past it, those already due again
# are forgotten (a forgotten key costs one write that the database's own check skips).
MAX_TRACKED_KEYS = 10_000
# How long (s) the writer waits for a pooled connection before it gives a use up; the
# next use of the key after LAST_USED_PRECISION_S tries again.
CONNECTION_WAIT_S = 5.0


class KeyUses:
    """The in-process half of the throttle: a key whose use this process noted less than
    `interval_s` ago (or that another process noted, as the database said) is not written
    again; the database's half (schemas.api_keys.record_use) holds across processes."""

    def __init__(self, interval_s: float = LAST_USED_PRECISION_S) -> None:
        self._interval_s = interval_s
        self._next_write: dict[uuid.UUID, float] = {}  # key id → time.monotonic()
        self._lock = threading.Lock()
        # One thread: the writes are few (one per key per interval) and must not crowd the
        # request handlers' connections.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-uses")
        self._read_only_said = False

    def note(self, pool: ConnectionPool, key_id: uuid.UUID) -> None:
        """The key `key_id` was used now: have it written if it is due; returns at once."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_write.get(key_id, 0.0):
                return
            self._next_write[key_id] = now + self._interval_s
            if len(self._next_write) > MAX_TRACKED_KEYS:
                for known, due in list(self._next_write.items()):
                    if due <= now:
                        del self._next_write[known]
        self._writer.submit(self._write, pool, key_id)

    def _write(self, pool: ConnectionPool, key_id: uuid.UUID) -> None:
        started = time.monotonic()
        try:
            with pool.connection(timeout=CONNECTION_WAIT_S) as conn:
                age_s = record_use(conn, key_id)
        except psycopg.errors.ReadOnlySqlTransaction:
            # A read replica: expected there, said once; the API on the primary records.
            if not self._read_only_said:
                self._read_only_said = True
                log.info("key_last_used=not_recorded reason=read_only_database")
            return
        except psycopg.Error as exc:  # pool closed or busy, database down: logged, not raised
            log.warning("key_last_used=not_recorded key_id=%s error=%r", key_id, exc)
            return
        if age_s:
            # Another process wrote it age_s ago: due again once that write is old enough.
            with self._lock:
                self._next_write[key_id] = started + self._interval_s - age_s

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until the writes noted so far are done (tests; shutdown)."""
        self._writer.submit(lambda: None).result(timeout=timeout_s)

    def forget(self, key_id: uuid.UUID) -> None:
        """Forget when `key_id` was last written, as a restart of the process would."""
        with self._lock:
            self._next_write.pop(key_id, None)


# One per process: the interval is per key, whichever app or pool serves it.
KEY_USES = KeyUses()


def note_key_use(pool: ConnectionPool, key_id: uuid.UUID) -> None:
    """Note a use of the key `key_id` (KeyUses.note on the process's KEY_USES)."""
    KEY_USES.note(pool, key_id)
