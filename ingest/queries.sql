-- Queries of the ingest worker, loaded once at start by schemas.named_queries.

-- name: create_claims
-- Per-connection scratch table for a batch's event ids; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS claims (event_id uuid, ts timestamptz) ON COMMIT DELETE ROWS

-- name: copy_event_ids
-- The gate's first try (ingest.writer._claim): fails on an id stored before.
COPY event_ids (event_id, ts) FROM STDIN (FORMAT BINARY)

-- name: copy_claims
COPY claims (event_id, ts) FROM STDIN (FORMAT BINARY)

-- name: claim_event_ids
-- The idempotency gate: inserts the ids of this batch never stored before, and returns
-- the others (the duplicates: usually none, so the worker does not read back a row per
-- event). ON CONFLICT rather than an anti-join against event_ids: the arbiter index is
-- always probed, whereas an anti-join's plan depends on the planner's guess of the
-- unanalysed claims table and, below a few million ids, was a hash join over the whole of
-- event_ids (11-23 ms a batch of 500 at 60,000 ids, growing with the table, against 3 ms
-- here). A concurrent worker inserting the same id makes this one wait for its commit and
-- then skip the id.
WITH fresh AS (
    INSERT INTO event_ids (event_id, ts)
    SELECT event_id, ts FROM claims
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
)
SELECT c.event_id FROM claims c
WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.event_id = c.event_id)

-- name: copy_events
-- COPY takes PostgreSQL's bulk-insert path: several times cheaper than INSERT … SELECT.
COPY events (event_id, ts, received_at, device_id, site_id, type, item_class, serial, qty, seq,
             reason, stream, weight_g, attrs) FROM STDIN (FORMAT BINARY)

-- name: add_counts
-- One round trip for everything a batch adds up: the 15-minute, hourly and day rollups,
-- rejects by reason, material quantities and grams, per-device daily counts, device
-- last-seen and the worker's counters. Rollup rows arrive pre-aggregated and sorted by
-- key, so concurrent workers lock them in the same order. Arrays are sent in binary
-- format: psycopg dumps timestamps as text about ten times slower.
WITH rollup AS (
    INSERT INTO event_counts_15m AS c (bucket, site_id, item_class, type, qty, events)
    SELECT * FROM unnest(%(bucket)b::timestamptz[], %(site_id)b::text[], %(item_class)b::text[],
                         %(type)b::text[], %(qty)b::bigint[], %(events)b::bigint[])
    ON CONFLICT (bucket, site_id, item_class, type)
    DO UPDATE SET qty = c.qty + EXCLUDED.qty, events = c.events + EXCLUDED.events
), typed AS (
    -- Return counts of the batch (return_counts_of, schemas/sql/functions.sql, says which
    -- events count where; the planner inlines it) under the packaging type and brand of
    -- their products as they are now (the caller holds the item classes' lock slots; NULL
    -- for unknown item classes).
    SELECT c.bucket, c.site_id, p.packaging_type_id AS packaging_type, p.brand,
           sum(r.sold) AS sold, sum(r.returned) AS returned, sum(r.rejected) AS rejected
    FROM unnest(%(bucket)b::timestamptz[], %(site_id)b::text[], %(item_class)b::text[],
                %(type)b::text[], %(qty)b::bigint[]) AS c (bucket, site_id, item_class, type, qty)
    CROSS JOIN LATERAL return_counts_of(c.type, c.qty) r
    LEFT JOIN products p ON p.item_class = c.item_class
    GROUP BY 1, 2, 3, 4
), day_counts AS (
    -- Quarter hours folded into local days of the rollup zone.
    SELECT t.site_id, (t.bucket AT TIME ZONE z.zone)::date AS day, t.packaging_type, t.brand,
           sum(t.sold) AS sold, sum(t.returned) AS returned, sum(t.rejected) AS rejected
    FROM typed t CROSS JOIN rollup_zone z
    GROUP BY 1, 2, 3, 4
), by_hour AS (
    INSERT INTO return_counts_hourly AS r (hour, packaging_type, brand, sold, returned, rejected)
    SELECT date_bin('1 hour', bucket, TIMESTAMPTZ '2000-01-01 00:00+00'), packaging_type, brand,
           sum(sold), sum(returned), sum(rejected)
    FROM typed GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (hour, packaging_type, brand) DO UPDATE
    SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
        rejected = r.rejected + EXCLUDED.rejected
), by_site_day AS (
    INSERT INTO site_return_counts_daily AS r
        (site_id, day, packaging_type, brand, sold, returned, rejected)
    SELECT * FROM day_counts ORDER BY site_id, day, packaging_type, brand
    ON CONFLICT (site_id, day, packaging_type, brand) DO UPDATE
    SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
        rejected = r.rejected + EXCLUDED.rejected
), by_day AS (
    INSERT INTO return_counts_daily AS r (day, packaging_type, brand, sold, returned, rejected)
    SELECT day, packaging_type, brand, sum(sold), sum(returned), sum(rejected)
    FROM day_counts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, packaging_type, brand) DO UPDATE
    SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
        rejected = r.rejected + EXCLUDED.rejected
), reject_days AS (
    SELECT (v.bucket AT TIME ZONE z.zone)::date AS day, v.item_class, v.reason, sum(v.qty) AS qty,
           sum(v.events) AS events
    FROM unnest(%(reject_bucket)b::timestamptz[], %(reject_item_class)b::text[],
                %(reject_reason)b::text[], %(reject_qty)b::bigint[], %(reject_events)b::bigint[])
         AS v (bucket, item_class, reason, qty, events)
    CROSS JOIN rollup_zone z
    GROUP BY 1, 2, 3
), rejects_by_day AS (
    INSERT INTO reject_counts_daily AS r (day, item_class, reason, qty, events)
    SELECT * FROM reject_days ORDER BY 1, 2, 3
    ON CONFLICT (day, item_class, reason) DO UPDATE
    SET qty = r.qty + EXCLUDED.qty, events = r.events + EXCLUDED.events
), rejects_by_month AS (
    INSERT INTO reject_counts_monthly AS r (month, item_class, reason, qty, events)
    SELECT date_trunc('month', day)::date, item_class, reason, sum(qty), sum(events)
    FROM reject_days GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (month, item_class, reason) DO UPDATE
    SET qty = r.qty + EXCLUDED.qty, events = r.events + EXCLUDED.events
), weighed AS (
    -- Sold, returned and sorted quantities and measured grams, under the declaration of
    -- their product in force at their quarter hour (the caller holds the item classes'
    -- slots).
    SELECT m.bucket, m.item_class, declaration_at(m.item_class, m.bucket) AS declared_from, m.type,
           m.stream, m.qty, m.measured_g, m.measured_qty
    FROM unnest(%(m_bucket)b::timestamptz[], %(m_item_class)b::text[], %(m_type)b::text[],
                %(m_stream)b::text[], %(m_qty)b::bigint[], %(m_measured_g)b::float8[],
                %(m_measured_qty)b::bigint[])
         AS m (bucket, item_class, type, stream, qty, measured_g, measured_qty)
), weighed_15m AS (
    INSERT INTO material_counts_15m AS r
        (bucket, item_class, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT * FROM weighed ORDER BY bucket, item_class, type, stream
    ON CONFLICT (bucket, item_class, declared_from, type, stream) DO UPDATE
    SET qty = r.qty + EXCLUDED.qty, measured_g = r.measured_g + EXCLUDED.measured_g,
        measured_qty = r.measured_qty + EXCLUDED.measured_qty
), grams AS (
    -- Their grams (material_grams_15m weighs the quarter hours the same way), under the
    -- packaging type and brand of their products as they are now.
    SELECT w.bucket, p.packaging_type_id AS packaging_type, p.brand, d.material, w.type,
           w.stream, w.qty, g.grams,
           coalesce(g.grams * d.recycled_content_pct / 100, 0) AS recycled_g,
           coalesce(g.grams * d.renewable_content_pct / 100, 0) AS renewable_g,
           CASE WHEN d.fibre_based THEN g.grams ELSE 0 END AS fibre_g,
           material_unweighed_qty(w.qty, w.measured_qty, d.weight_g) AS unweighed_qty
    FROM weighed w
    LEFT JOIN material_declarations d
           ON d.item_class = w.item_class AND d.declared_from = w.declared_from
    LEFT JOIN products p ON p.item_class = w.item_class
    CROSS JOIN LATERAL (
        SELECT material_grams(w.qty, w.measured_g, w.measured_qty, d.weight_g) AS grams
    ) g
), grams_daily AS (
    INSERT INTO material_grams_daily AS r
        (day, packaging_type, brand, material, type, stream, qty, grams, recycled_g,
         renewable_g, fibre_g, unweighed_qty)
    SELECT (g.bucket AT TIME ZONE z.zone)::date, g.packaging_type, g.brand, g.material,
           g.type, g.stream, sum(g.qty), sum(g.grams), sum(g.recycled_g),
           sum(g.renewable_g), sum(g.fibre_g), sum(g.unweighed_qty)
    FROM grams g CROSS JOIN rollup_zone z
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (day, packaging_type, brand, material, type, stream) DO UPDATE
    SET qty = r.qty + EXCLUDED.qty, grams = r.grams + EXCLUDED.grams,
        recycled_g = r.recycled_g + EXCLUDED.recycled_g,
        renewable_g = r.renewable_g + EXCLUDED.renewable_g,
        fibre_g = r.fibre_g + EXCLUDED.fibre_g,
        unweighed_qty = r.unweighed_qty + EXCLUDED.unweighed_qty
), grams_hourly AS (
    INSERT INTO material_grams_hourly AS r
        (hour, packaging_type, brand, material, type, stream, qty, grams, recycled_g,
         renewable_g, fibre_g, unweighed_qty)
    SELECT date_bin('1 hour', g.bucket, TIMESTAMPTZ '2000-01-01 00:00+00'), g.packaging_type,
           g.brand, g.material, g.type, g.stream, sum(g.qty), sum(g.grams),
           sum(g.recycled_g), sum(g.renewable_g), sum(g.fibre_g), sum(g.unweighed_qty)
    FROM grams g
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (hour, packaging_type, brand, material, type, stream) DO UPDATE
    SET qty = r.qty + EXCLUDED.qty, grams = r.grams + EXCLUDED.grams,
        recycled_g = r.recycled_g + EXCLUDED.recycled_g,
        renewable_g = r.renewable_g + EXCLUDED.renewable_g,
        fibre_g = r.fibre_g + EXCLUDED.fibre_g,
        unweighed_qty = r.unweighed_qty + EXCLUDED.unweighed_qty
), daily AS (
    INSERT INTO device_counts_daily AS d (day, device_id, events)
    SELECT * FROM unnest(%(day)b::date[], %(day_device_id)b::text[], %(day_events)b::bigint[])
    ON CONFLICT (device_id, day) DO UPDATE SET events = d.events + EXCLUDED.events
), seen AS (
    -- Every accepted message proves the device alive, duplicates included.
    INSERT INTO device_state AS s (device_id, last_seen)
    SELECT * FROM unnest(%(seen_device_id)b::text[], %(last_seen)b::timestamptz[])
    ON CONFLICT (device_id) DO UPDATE SET last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
)
INSERT INTO ingest_counters AS c (worker, received, stored, duplicates, dead_lettered)
VALUES (%(worker)s, %(received)s, %(stored)s, %(duplicates)s, %(dead_lettered)s)
ON CONFLICT (worker) DO UPDATE
SET received = c.received + EXCLUDED.received,
    stored = c.stored + EXCLUDED.stored,
    duplicates = c.duplicates + EXCLUDED.duplicates,
    dead_lettered = c.dead_lettered + EXCLUDED.dead_lettered,
    updated_at = now()

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
UPDATE device_state AS s SET max_seq = v.max_seq
FROM unnest(%(device_id)s::text[], %(max_seq)s::bigint[]) AS v (device_id, max_seq)
WHERE s.device_id = v.device_id

-- name: delete_gaps
DELETE FROM seq_gaps AS g
USING unnest(%(device_id)s::text[], %(gap_from)s::bigint[]) AS v (device_id, gap_from)
WHERE g.device_id = v.device_id AND g.gap_from = v.gap_from

-- name: insert_gaps
INSERT INTO seq_gaps (device_id, gap_from, gap_to)
SELECT * FROM unnest(%(device_id)s::text[], %(gap_from)s::bigint[], %(gap_to)s::bigint[])

-- name: copy_dead_letters
-- payload is schemas.messages.DeadLetterPayload.stored: a payload over 256 KiB only as its
-- first 4 KiB; payload_size and payload_sha256 are always of the whole payload.
COPY dead_letters (received_at, topic, device_id, reason, detail, batch_index, payload,
                   payload_size, payload_sha256) FROM STDIN

-- name: set_statuses
-- The latest status per device of a batch (one row per device: ON CONFLICT may touch a
-- row once). A retained status is old news: it sets online/offline but not last_seen.
INSERT INTO device_state AS s (device_id, online, status_at, last_seen)
SELECT v.device_id, v.online, v.received_at,
       CASE WHEN v.retained THEN NULL ELSE v.received_at END
FROM unnest(%(device_id)s::text[], %(online)s::boolean[], %(received_at)s::timestamptz[],
            %(retained)s::boolean[]) AS v (device_id, online, received_at, retained)
WHERE EXISTS (SELECT 1 FROM devices d WHERE d.id = v.device_id)
ORDER BY v.device_id
ON CONFLICT (device_id) DO UPDATE
SET online = EXCLUDED.online,
    status_at = EXCLUDED.status_at,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)

-- name: known_devices
SELECT id, site_id FROM devices WHERE id = ANY(%(device_ids)s)
