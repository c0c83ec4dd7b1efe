-- Queries of the reuse aggregates (ingest/item_loops.py), loaded once at start by
-- schemas.named_queries.

-- name: add_items
-- Reuse aggregates (ingest/item_loops.py): a row for each item new to them, in key order.
INSERT INTO item_loops (gtin, serial)
SELECT * FROM unnest(%(gtin)s::text[], %(serial)s::text[]) AS k (gtin, serial)
ORDER BY 1, 2
ON CONFLICT (gtin, serial) DO NOTHING

-- name: lock_items
SELECT l.gtin, l.serial, l.trips, l.in_loop, l.last_type, l.last_ts, l.last_event_id,
       l.loop_type, l.loop_ts, l.loop_event_id, l.open_sold, l.open_filled
FROM item_loops l
JOIN unnest(%(gtin)s::text[], %(serial)s::text[]) AS k (gtin, serial)
  ON l.gtin = k.gtin AND l.serial = k.serial
ORDER BY l.gtin, l.serial
FOR UPDATE OF l

-- name: item_loop_events
-- The trip events of items to fold again from the start, in SPEC §7's order.
SELECT e.gtin, e.serial, e.ts, e.event_id, e.type, e.device_id, e.site_id
FROM events e
JOIN unnest(%(gtin)s::text[], %(serial)s::text[]) AS k (gtin, serial)
  ON e.gtin = k.gtin AND e.serial = k.serial
WHERE e.type IN ('sold', 'filled', 'returned')
ORDER BY e.gtin, e.serial, e.ts, e.event_id

-- name: forget_item_loops
-- Returns the trips taken away that have a start, for insert_trips to take their
-- lengths off the counts.
WITH duplicates AS (
    DELETE FROM duplicate_returns d
    USING unnest(%(gtin)s::text[], %(serial)s::text[]) AS k (gtin, serial)
    WHERE d.gtin = k.gtin AND d.serial = k.serial
), trips AS (
    DELETE FROM item_trips t
    USING unnest(%(gtin)s::text[], %(serial)s::text[]) AS k (gtin, serial)
    WHERE t.gtin = k.gtin AND t.serial = k.serial
    RETURNING t.gtin, t.started_at, t.ended_at
)
SELECT gtin, started_at, ended_at FROM trips WHERE started_at IS NOT NULL

-- name: set_items
UPDATE item_loops AS l
SET trips = v.trips, in_loop = v.in_loop, last_type = v.last_type, last_ts = v.last_ts,
    last_event_id = v.last_event_id, loop_type = v.loop_type, loop_ts = v.loop_ts,
    loop_event_id = v.loop_event_id, open_sold = v.open_sold, open_filled = v.open_filled
FROM unnest(%(gtin)s::text[], %(serial)s::text[], %(trips)s::int[], %(in_loop)s::bool[],
            %(last_type)s::text[], %(last_ts)s::timestamptz[], %(last_event_id)s::uuid[],
            %(loop_type)s::text[], %(loop_ts)s::timestamptz[], %(loop_event_id)s::uuid[],
            %(open_sold)s::timestamptz[], %(open_filled)s::timestamptz[])
     AS v (gtin, serial, trips, in_loop, last_type, last_ts, last_event_id, loop_type,
           loop_ts, loop_event_id, open_sold, open_filled)
WHERE l.gtin = v.gtin AND l.serial = v.serial

-- name: insert_trips
-- New trips, and the trip-length counts (migration 0017) under their products' packaging
-- type and brand: the new trips' lengths added, and those of the trips forget_item_loops
-- took away (the removed_ arrays) taken off, in one call that locks the counts' rows in
-- key order. The caller holds the GTINs' lock slots (schemas.rollups).
WITH added AS (
    INSERT INTO item_trips (end_event_id, gtin, serial, started_at, ended_at)
    SELECT * FROM unnest(%(end_event_id)s::uuid[], %(gtin)s::text[], %(serial)s::text[],
                         %(started_at)s::timestamptz[], %(ended_at)s::timestamptz[])
), lengths AS (
    SELECT gtin, trip_seconds(started_at, ended_at) AS seconds, 1 AS sign
    FROM unnest(%(gtin)s::text[], %(started_at)s::timestamptz[], %(ended_at)s::timestamptz[])
         AS a (gtin, started_at, ended_at)
    WHERE started_at IS NOT NULL
    UNION ALL
    SELECT gtin, trip_seconds(started_at, ended_at), -1
    FROM unnest(%(removed_gtin)s::text[], %(removed_started_at)s::timestamptz[],
                %(removed_ended_at)s::timestamptz[]) AS r (gtin, started_at, ended_at)
)
SELECT count_trip_lengths(array_agg(p.packaging_type_id), array_agg(p.brand),
                          array_agg(l.seconds), array_agg(l.sign))
FROM lengths l
JOIN products p ON p.gtin = l.gtin

-- name: insert_duplicates
INSERT INTO duplicate_returns (event_id, gtin, serial, ts, previous_ts, device_id, site_id)
SELECT * FROM unnest(%(event_id)s::uuid[], %(gtin)s::text[], %(serial)s::text[],
                     %(ts)s::timestamptz[], %(previous_ts)s::timestamptz[],
                     %(device_id)s::text[], %(site_id)s::text[])
