-- The retention job (schemas/retention.py): what pruning has done, and one bounded batch
-- of deletions per statement. Every batch deletes the oldest rows first and says where the
-- next one starts, so no batch walks again over what the previous ones deleted.

-- name: wait_for_lock
-- One run at a time per database (a session lock: held across the run's transactions).
SELECT pg_advisory_lock(%(key)s)

-- name: try_lock
SELECT pg_try_advisory_lock(%(key)s)

-- name: unlock
SELECT pg_advisory_unlock(%(key)s)

-- name: advance_horizon
-- Before anything is deleted: from now on, whatever re-reads history from the beginning
-- learns that raw events and quarter-hour rows before the cutoff may be gone. Only when
-- some are there to delete: a deployment younger than its retention keeps all its history.
UPDATE retention_state
SET horizon = CASE WHEN EXISTS (SELECT 1 FROM events WHERE ts < %(cutoff)s)
                     OR EXISTS (SELECT 1 FROM event_counts_15m WHERE bucket < %(cutoff)s)
                     OR EXISTS (SELECT 1 FROM material_counts_15m WHERE bucket < %(cutoff)s)
                   THEN GREATEST(horizon, %(cutoff)s) ELSE horizon END
RETURNING horizon, done_before

-- name: finish
-- After a run deleted everything before its cutoff (also when that is earlier than before:
-- a longer retention keeps rows a shorter one must still find).
UPDATE retention_state SET done_before = %(cutoff)s

-- name: horizon
SELECT horizon FROM retention_state

-- name: timescaledb_installed
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')

-- name: events_is_hypertable
-- Only asked when TimescaleDB is installed: the view does not exist otherwise.
SELECT EXISTS (
    SELECT 1 FROM timescaledb_information.hypertables
    WHERE hypertable_schema = current_schema() AND hypertable_name = 'events'
)

-- name: prune_events
-- Plain PostgreSQL: a batch of raw events and, in the same statement, their idempotency
-- keys (one per stored event: the ingest inserts both in one transaction), so no key
-- outlives its event and none goes while its event stays. Returns the rows picked, the
-- events and keys deleted, and the newest `ts` picked (where the next batch starts).
WITH batch AS MATERIALIZED (
    SELECT ctid, ts FROM events
    WHERE ts >= %(after)s AND ts < %(cutoff)s
    ORDER BY ts LIMIT %(rows)s
), gone AS (
    DELETE FROM events e WHERE e.ctid = ANY (ARRAY(SELECT ctid FROM batch))
    RETURNING e.event_id
), keys AS (
    DELETE FROM event_ids i USING gone g WHERE i.event_id = g.event_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone),
       (SELECT count(*) FROM keys), (SELECT max(ts) FROM batch)

-- name: prune_event_ids_of_chunks
-- TimescaleDB: the idempotency keys of a batch of raw events, which stay until their
-- chunk is dropped whole (drop_chunks); (ts, event_id) orders the walk, since nothing of
-- `events` is deleted here.
WITH batch AS (
    SELECT event_id, ts FROM events
    WHERE ts >= %(after)s AND (ts, event_id) > (%(after)s, %(after_id)s) AND ts < %(cutoff)s
    ORDER BY ts, event_id LIMIT %(rows)s
), keys AS (
    DELETE FROM event_ids i USING batch b WHERE i.event_id = b.event_id
    RETURNING 1
), last AS (
    SELECT ts, event_id FROM batch ORDER BY ts DESC, event_id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM keys),
       (SELECT ts FROM last), (SELECT event_id FROM last)

-- name: drop_event_chunks
-- TimescaleDB: chunks of `events` wholly older than the cutoff (their keys went first).
SELECT count(*) FROM drop_chunks('events', older_than => %(cutoff)s::timestamptz)

-- name: prune_rows
-- A batch of the rows of {table} whose {column} is before the cutoff, oldest first.
-- Returns the rows picked, those deleted, and the newest {column} picked (where the next
-- batch starts). Deleted by ctid: a scan of what the batch picked, nothing more.
WITH batch AS MATERIALIZED (
    SELECT ctid, {column} AS at FROM {table}
    WHERE {column} >= %(after)s AND {column} < %(cutoff)s
    ORDER BY {column} LIMIT %(rows)s
), gone AS (
    DELETE FROM {table} t WHERE t.ctid = ANY (ARRAY(SELECT ctid FROM batch))
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone), (SELECT max(at) FROM batch)
