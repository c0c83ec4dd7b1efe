-- Queries of the ingest worker, loaded once at start by schemas.named_queries.

-- name: create_staging
-- Per-connection scratch table the batch is COPYed into; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS staging_events (LIKE events) ON COMMIT DELETE ROWS

-- name: copy_staging
COPY staging_events (event_id, ts, received_at, device_id, site_id, type, gtin, serial, qty,
                     seq, reason, stream, attrs) FROM STDIN

-- name: store_staged
-- Exactly-once: only events whose id is new in event_ids are inserted and counted in the
-- rollups, all in one statement so a duplicate can never reach the aggregates. Returns
-- per device the number of events stored and their seqs (for gap tracking).
WITH fresh AS (
    INSERT INTO event_ids (event_id, ts)
    SELECT DISTINCT ON (event_id) event_id, ts FROM staging_events ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), stored AS (
    INSERT INTO events (event_id, ts, received_at, device_id, site_id, type, gtin, serial,
                        qty, seq, reason, stream, attrs)
    SELECT DISTINCT ON (s.event_id) s.event_id, s.ts, s.received_at, s.device_id, s.site_id,
           s.type, s.gtin, s.serial, s.qty, s.seq, s.reason, s.stream, s.attrs
    FROM staging_events s JOIN fresh USING (event_id)
    ORDER BY s.event_id, s.received_at
    RETURNING device_id, site_id, gtin, type, qty, ts, seq
), counted AS (
    INSERT INTO event_counts_15m AS c (bucket, site_id, gtin, type, qty, events)
    SELECT date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00+00'), site_id, gtin, type,
           sum(qty), count(*)
    FROM stored
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, site_id, gtin, type)
    DO UPDATE SET qty = c.qty + EXCLUDED.qty, events = c.events + EXCLUDED.events
), per_day AS (
    INSERT INTO device_counts_daily AS d (day, device_id, events)
    SELECT (ts AT TIME ZONE 'UTC')::date, device_id, count(*)
    FROM stored
    GROUP BY 1, 2
    ORDER BY 2, 1
    ON CONFLICT (device_id, day) DO UPDATE SET events = d.events + EXCLUDED.events
)
SELECT device_id, count(*), array_agg(seq ORDER BY seq) FILTER (WHERE seq IS NOT NULL)
FROM stored
GROUP BY device_id

-- name: touch_devices
-- Every accepted message proves the device alive, duplicates included.
INSERT INTO device_state AS s (device_id, last_seen)
SELECT device_id, max(received_at) FROM staging_events GROUP BY device_id ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)

-- name: lock_seq_state
-- Serialises seq tracking per device between workers; rows locked in id order (no deadlock).
SELECT device_id, max_seq FROM device_state
WHERE device_id = ANY(%(device_ids)s)
ORDER BY device_id
FOR UPDATE

-- name: open_gaps
SELECT device_id, gap_from, gap_to FROM seq_gaps
WHERE device_id = ANY(%(device_ids)s) AND gap_to >= %(min_seq)s

-- name: set_max_seq
UPDATE device_state SET max_seq = %(max_seq)s WHERE device_id = %(device_id)s

-- name: delete_gap
DELETE FROM seq_gaps WHERE device_id = %(device_id)s AND gap_from = %(gap_from)s

-- name: insert_gap
INSERT INTO seq_gaps (device_id, gap_from, gap_to) VALUES (%(device_id)s, %(gap_from)s, %(gap_to)s)
ON CONFLICT (device_id, gap_from) DO UPDATE SET gap_to = EXCLUDED.gap_to

-- name: copy_dead_letters
COPY dead_letters (received_at, topic, device_id, reason, detail, batch_index, payload) FROM STDIN

-- name: set_status
-- A retained status is old news: it sets online/offline but not last_seen.
INSERT INTO device_state AS s (device_id, online, status_at, last_seen)
SELECT %(device_id)s, %(online)s, %(received_at)s,
       CASE WHEN %(retained)s THEN NULL ELSE %(received_at)s::timestamptz END
WHERE EXISTS (SELECT 1 FROM devices WHERE id = %(device_id)s)
ON CONFLICT (device_id) DO UPDATE
SET online = EXCLUDED.online,
    status_at = EXCLUDED.status_at,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)

-- name: known_devices
SELECT id, site_id FROM devices WHERE id = ANY(%(device_ids)s)

-- name: add_counters
INSERT INTO ingest_counters AS c (worker, stored, duplicates, dead_lettered)
VALUES (%(worker)s, %(stored)s, %(duplicates)s, %(dead_lettered)s)
ON CONFLICT (worker) DO UPDATE
SET stored = c.stored + EXCLUDED.stored,
    duplicates = c.duplicates + EXCLUDED.duplicates,
    dead_lettered = c.dead_lettered + EXCLUDED.dead_lettered,
    updated_at = now()
