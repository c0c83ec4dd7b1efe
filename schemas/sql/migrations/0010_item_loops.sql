-- Reuse as aggregates (SPEC §6: statistics never scan all raw events). The ingest keeps,
-- in the same transaction as the raw insert, one row per serialised item, one per trip
-- and one per duplicate return (ingest/item_loops.py folds events into them by the same
-- definition as the loop_events view, which stays the reference the tests compare with).

-- One serialised item: what its events so far add up to.
CREATE TABLE item_loops (
    gtin          text NOT NULL,
    serial        text NOT NULL,
    trips         integer NOT NULL DEFAULT 0,
    in_loop       boolean NOT NULL DEFAULT false, -- ever sold or filled
    last_type     text,        -- latest event of any type (lost: SPEC §7)
    last_ts       timestamptz,
    last_event_id uuid,
    loop_type     text,        -- latest `sold`, `filled` or `returned`
    loop_ts       timestamptz,
    loop_event_id uuid,
    open_sold     timestamptz, -- first `sold` since the last trip ended
    open_filled   timestamptz, -- first `filled` since the last trip ended
    PRIMARY KEY (gtin, serial)
);

-- One trip, keyed by the `returned` that ended it; started_at is NULL for a trip with no
-- `sold` or `filled` seen (an item first scanned at its return).
CREATE TABLE item_trips (
    end_event_id uuid PRIMARY KEY,
    gtin         text NOT NULL,
    serial       text NOT NULL,
    started_at   timestamptz,
    ended_at     timestamptz NOT NULL,
    -- SPEC §7 trip_days, as a float: the mean and median read it without numeric math.
    days         double precision
                 GENERATED ALWAYS AS (extract(epoch FROM ended_at - started_at) / 86400) STORED
);
CREATE INDEX item_trips_item ON item_trips (gtin, serial);

-- A `returned` that followed another `returned` of its item: possible cloned label.
CREATE TABLE duplicate_returns (
    event_id    uuid PRIMARY KEY,
    gtin        text NOT NULL,
    serial      text NOT NULL,
    ts          timestamptz NOT NULL,
    previous_ts timestamptz NOT NULL,
    device_id   text NOT NULL,
    site_id     text NOT NULL
);
CREATE INDEX duplicate_returns_item ON duplicate_returns (gtin, serial);
CREATE INDEX duplicate_returns_ts ON duplicate_returns (ts);

-- Backfill from the events stored so far: each loop event numbered by the trips its item
-- had ended before it (its segment; the open trip is the segment numbered `trips`).
CREATE TEMP TABLE loop_segments ON COMMIT DROP AS
SELECT l.gtin, l.serial, l.ts, l.event_id, l.type, l.trip_end,
       count(*) FILTER (WHERE l.trip_end) OVER (
           PARTITION BY l.gtin, l.serial ORDER BY l.ts, l.event_id
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS segment
FROM loop_events l;

INSERT INTO item_trips (end_event_id, gtin, serial, started_at, ended_at)
SELECT (array_agg(event_id) FILTER (WHERE trip_end))[1], gtin, serial,
       coalesce(min(ts) FILTER (WHERE type = 'sold'), min(ts) FILTER (WHERE type = 'filled')),
       max(ts) FILTER (WHERE trip_end)
FROM loop_segments
GROUP BY gtin, serial, segment
HAVING bool_or(trip_end);

INSERT INTO duplicate_returns (event_id, gtin, serial, ts, previous_ts, device_id, site_id)
SELECT event_id, gtin, serial, ts, previous_ts, device_id, site_id
FROM loop_events
WHERE type = 'returned' AND previous_type = 'returned';

INSERT INTO item_loops (gtin, serial, trips, in_loop, last_type, last_ts, last_event_id,
                        loop_type, loop_ts, loop_event_id, open_sold, open_filled)
SELECT a.gtin, a.serial, coalesce(o.trips, 0), coalesce(o.in_loop, false),
       a.type, a.ts, a.event_id, o.type, o.ts, o.event_id, o.open_sold, o.open_filled
FROM (
    SELECT DISTINCT ON (gtin, serial) gtin, serial, type, ts, event_id
    FROM events WHERE serial IS NOT NULL
    ORDER BY gtin, serial, ts DESC, event_id DESC
) a
LEFT JOIN (
    SELECT gtin, serial, count(*) FILTER (WHERE trip_end) AS trips,
           (array_agg(type ORDER BY ts DESC, event_id DESC))[1] AS type,
           max(ts) AS ts,
           (array_agg(event_id ORDER BY ts DESC, event_id DESC))[1] AS event_id,
           bool_or(type IN ('sold', 'filled')) AS in_loop,
           min(ts) FILTER (WHERE type = 'sold' AND open) AS open_sold,
           min(ts) FILTER (WHERE type = 'filled' AND open) AS open_filled
    FROM (
        SELECT s.*, s.segment = count(*) FILTER (WHERE s.trip_end)
                                OVER (PARTITION BY s.gtin, s.serial) AS open
        FROM loop_segments s
    ) seg
    GROUP BY gtin, serial
) o USING (gtin, serial);
