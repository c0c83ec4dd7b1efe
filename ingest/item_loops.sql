-- Queries of the reuse aggregates (ingest/item_loops.py), loaded once at start by
-- schemas.named_queries. Arrays are sent in binary (%()b): psycopg dumps a list of
-- timestamps as text ten times slower than as binary, and these carry one per item.

-- name: add_items
-- Every item of the batch in one pass, in key order: an item new to the aggregates gets its
-- row with the state its events fold to from nothing, which is final (it has no stored
-- events); an item with a row has it locked (ON CONFLICT DO UPDATE locks the row it meets
-- even when its WHERE is false, and writes nothing) and is returned, to be folded from its
-- stored state.
WITH added AS (
    INSERT INTO item_loops AS l (item_class, serial, trips, in_loop, last_type, last_ts,
                                 last_event_id, loop_type, loop_ts, loop_event_id, open_sold,
                                 open_filled)
    SELECT * FROM unnest(%(item_class)b::text[], %(serial)b::text[], %(trips)b::int[],
                         %(in_loop)b::bool[], %(last_type)b::text[],
                         %(last_ts)b::timestamptz[], %(last_event_id)b::uuid[],
                         %(loop_type)b::text[], %(loop_ts)b::timestamptz[],
                         %(loop_event_id)b::uuid[], %(open_sold)b::timestamptz[],
                         %(open_filled)b::timestamptz[])
         AS v (item_class, serial, trips, in_loop, last_type, last_ts, last_event_id, loop_type,
               loop_ts, loop_event_id, open_sold, open_filled)
    ORDER BY item_class, serial
    ON CONFLICT (item_class, serial) DO UPDATE SET trips = l.trips WHERE false
    RETURNING item_class, serial
)
SELECT * FROM unnest(%(item_class)b::text[], %(serial)b::text[])
EXCEPT ALL
SELECT item_class, serial FROM added

-- name: stored_items
-- The stored state of items add_items locked. A statement of its own: its snapshot is
-- taken after the locks, so it sees what a worker committed while add_items waited for it.
SELECT l.item_class, l.serial, l.trips, l.in_loop, l.last_type, l.last_ts, l.last_event_id,
       l.loop_type, l.loop_ts, l.loop_event_id, l.open_sold, l.open_filled
FROM item_loops l
JOIN unnest(%(item_class)b::text[], %(serial)b::text[]) AS k (item_class, serial)
  ON l.item_class = k.item_class AND l.serial = k.serial

-- name: item_loop_events
-- The trip events (types: item_loops.LOOP_TYPES) of items to fold again from the start,
-- in SPEC §7's order.
SELECT e.item_class, e.serial, e.ts, e.event_id, e.type, e.device_id, e.site_id
FROM events e
JOIN unnest(%(item_class)b::text[], %(serial)b::text[]) AS k (item_class, serial)
  ON e.item_class = k.item_class AND e.serial = k.serial
WHERE e.type = ANY (%(types)b::text[])
ORDER BY e.item_class, e.serial, e.ts, e.event_id

-- name: forget_item_loops
-- Returns the trips taken away that have a start, for insert_trips to take their
-- lengths off the counts.
WITH duplicates AS (
    DELETE FROM duplicate_returns d
    USING unnest(%(item_class)b::text[], %(serial)b::text[]) AS k (item_class, serial)
    WHERE d.item_class = k.item_class AND d.serial = k.serial
), trips AS (
    DELETE FROM item_trips t
    USING unnest(%(item_class)b::text[], %(serial)b::text[]) AS k (item_class, serial)
    WHERE t.item_class = k.item_class AND t.serial = k.serial
    RETURNING t.item_class, t.started_at, t.ended_at
)
SELECT item_class, started_at, ended_at FROM trips WHERE started_at IS NOT NULL

-- name: set_items
-- The new state of items that had a row (add_items locked them).
UPDATE item_loops AS l
SET trips = v.trips, in_loop = v.in_loop, last_type = v.last_type, last_ts = v.last_ts,
    last_event_id = v.last_event_id, loop_type = v.loop_type, loop_ts = v.loop_ts,
    loop_event_id = v.loop_event_id, open_sold = v.open_sold, open_filled = v.open_filled
FROM unnest(%(item_class)b::text[], %(serial)b::text[], %(trips)b::int[], %(in_loop)b::bool[],
            %(last_type)b::text[], %(last_ts)b::timestamptz[], %(last_event_id)b::uuid[],
            %(loop_type)b::text[], %(loop_ts)b::timestamptz[], %(loop_event_id)b::uuid[],
            %(open_sold)b::timestamptz[], %(open_filled)b::timestamptz[])
     AS v (item_class, serial, trips, in_loop, last_type, last_ts, last_event_id, loop_type,
           loop_ts, loop_event_id, open_sold, open_filled)
WHERE l.item_class = v.item_class AND l.serial = v.serial

-- name: insert_trips
-- New trips and duplicate returns, and the trip-length counts (migration 0017) under their
-- products' packaging type and brand, in one call that locks the counts' rows in key
-- order, last of all the batch's locks. A length is a trip's start and end; its sign is
-- how many trips of that length and item class are added (> 0) or, taken away by
-- forget_item_loops, removed (< 0). The caller holds the item classes' lock slots
-- (schemas.rollups).
WITH trips AS (
    INSERT INTO item_trips (end_event_id, item_class, serial, started_at, ended_at)
    SELECT * FROM unnest(%(end_event_id)b::uuid[], %(item_class)b::text[], %(serial)b::text[],
                         %(started_at)b::timestamptz[], %(ended_at)b::timestamptz[])
), duplicates AS (
    INSERT INTO duplicate_returns (event_id, item_class, serial, ts, previous_ts, device_id,
                                   site_id)
    SELECT * FROM unnest(%(d_event_id)b::uuid[], %(d_item_class)b::text[], %(d_serial)b::text[],
                         %(d_ts)b::timestamptz[], %(d_previous_ts)b::timestamptz[],
                         %(d_device_id)b::text[], %(d_site_id)b::text[])
)
SELECT count_trip_lengths(array_agg(p.packaging_type_id), array_agg(p.brand),
                          array_agg(trip_seconds(l.started_at, l.ended_at)),
                          array_agg(l.sign))
FROM unnest(%(l_item_class)b::text[], %(l_started_at)b::timestamptz[],
            %(l_ended_at)b::timestamptz[], %(l_sign)b::int[])
     AS l (item_class, started_at, ended_at, sign)
JOIN products p ON p.item_class = l.item_class
