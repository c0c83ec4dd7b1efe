-- Trip lengths counted per packaging type and brand, so that /v1/stats/reuse reads the
-- mean and median trip days (SPEC §7) off counts instead of every row of item_trips.
--
-- The mean is a sum over a count, exact (lengths kept to the microsecond in numeric).
-- The median is percentile_cont(0.5) of item_trips.days, to the bit: the one or two
-- middle trips are found by rank, among the days of length, then the hours of that day,
-- then the minutes of that hour, and only the trips of that minute are read from
-- item_trips (by the index on GTIN and length below). An answer reads the day counts
-- (a few hundred rows per packaging type and brand), 24 + 60 rows per brand, and the
-- trips of one minute of length, however many trips there are.
--
-- Kept by the ingest in the transaction that writes item_trips (ingest/item_loops.py,
-- the insert_trips query), under the products' packaging type and brand as they are
-- then; trips of GTINs not registered as products are not counted until they are. A
-- product registered, re-assigned or removed carries its GTIN's trips with it
-- (move_trip_lengths, a trigger on products). The GTIN lock slots of schemas.rollups
-- keep that move and a batch's trips from missing each other: the batch holds its
-- GTINs' slots shared, a product change holds its GTIN's slot exclusively.

-- A trip's length in seconds, exact to the microsecond; never negative (a trip starts at
-- a `sold` or `filled` before its `returned` in SPEC §7's order).
CREATE FUNCTION trip_seconds(started_at timestamptz, ended_at timestamptz) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN extract(epoch FROM ended_at - started_at);

-- Trips with a start (item_trips.days not NULL) per packaging type and brand, by whole
-- days, hours and minutes of length, with the sum of their lengths: the median's rank is
-- looked for among the days, then the hours of that day, then the minutes of that hour.
CREATE TABLE trip_length_counts (
    unit_s         integer NOT NULL CHECK (unit_s IN (86400, 3600, 60)), -- a day, hour, minute
    packaging_type text NOT NULL,
    brand          text NOT NULL,
    bucket         integer NOT NULL, -- whole units of length: div(trip_seconds, unit_s)
    trips          bigint NOT NULL,
    length_s       numeric NOT NULL, -- Σ trip_seconds
    PRIMARY KEY (unit_s, packaging_type, bucket, brand)
);

-- The trips of one minute of length of a GTIN, in order of length (the median's last step).
CREATE INDEX item_trips_length ON item_trips (gtin, (ended_at - started_at))
WHERE started_at IS NOT NULL;

-- Adds trips (sign 1) or takes them away (sign -1) under their packaging types and brands,
-- in every unit. Rows are locked in key order, and those left at zero removed: no trips,
-- no row.
CREATE FUNCTION count_trip_lengths(
    packaging_types text[], brands text[], seconds numeric[], signs integer[]
) RETURNS void LANGUAGE sql STRICT AS $$
    INSERT INTO trip_length_counts AS c (unit_s, packaging_type, bucket, brand, trips, length_s)
    SELECT u.unit_s, v.packaging_type, div(v.seconds, u.unit_s)::integer, v.brand, sum(v.sign),
           sum(v.sign * v.seconds)
    FROM unnest(packaging_types, brands, seconds, signs) AS v (packaging_type, brand, seconds, sign)
    CROSS JOIN (VALUES (86400), (3600), (60)) AS u (unit_s)
    GROUP BY 1, 2, 3, 4
    -- A trip folded again to the same length is taken away and added back: nothing to do.
    HAVING sum(v.sign) <> 0 OR sum(v.sign * v.seconds) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (unit_s, packaging_type, bucket, brand) DO UPDATE
    SET trips = c.trips + EXCLUDED.trips, length_s = c.length_s + EXCLUDED.length_s;

    DELETE FROM trip_length_counts c
    USING unnest(packaging_types, brands, seconds, signs) AS v (packaging_type, brand, seconds, sign),
          (VALUES (86400), (3600), (60)) AS u (unit_s)
    WHERE v.sign < 0 AND c.packaging_type = v.packaging_type AND c.unit_s = u.unit_s
      AND c.bucket = div(v.seconds, u.unit_s) AND c.brand = v.brand AND c.trips = 0;
$$;

-- A product's GTIN filed under another packaging type or brand (or first registered, or
-- removed): its trips leave the old counts and join the new ones. Deferred to the end of
-- the transaction, so that a product change takes its rollup rows in the order a batch
-- does (the return rollups that schemas.rollups.move_counts moves first, these last);
-- the caller holds the GTIN's lock slot (schemas.rollups.lock_products) until then.
CREATE FUNCTION move_trip_lengths() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.gtin, NEW.packaging_type_id, NEW.brand)
                            = (OLD.gtin, OLD.packaging_type_id, OLD.brand) THEN
        RETURN NULL;
    END IF;
    -- Old and new counts in one call: their rows locked together, in key order.
    PERFORM count_trip_lengths(array_agg(k.packaging_type), array_agg(k.brand),
                               array_agg(trip_seconds(t.started_at, t.ended_at)),
                               array_agg(k.sign))
    FROM (
        SELECT OLD.gtin, OLD.packaging_type_id, OLD.brand, -1 WHERE TG_OP <> 'INSERT'
        UNION ALL
        SELECT NEW.gtin, NEW.packaging_type_id, NEW.brand, 1 WHERE TG_OP <> 'DELETE'
    ) AS k (gtin, packaging_type, brand, sign)
    JOIN item_trips t ON t.gtin = k.gtin AND t.started_at IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER products_move_trip_lengths
AFTER INSERT OR UPDATE OR DELETE ON products
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION move_trip_lengths();

-- The counts from item_trips (also for bench/trips.py, which loads trips by SQL): minutes
-- first, then hours and days from them.
CREATE FUNCTION rebuild_trip_lengths() RETURNS void LANGUAGE sql AS $$
    TRUNCATE trip_length_counts;
    INSERT INTO trip_length_counts (unit_s, packaging_type, bucket, brand, trips, length_s)
    SELECT 60, p.packaging_type_id, div(l.seconds, 60)::integer, p.brand, count(*),
           sum(l.seconds)
    FROM item_trips t
    JOIN products p ON p.gtin = t.gtin
    CROSS JOIN LATERAL (SELECT trip_seconds(t.started_at, t.ended_at) AS seconds) l
    WHERE t.started_at IS NOT NULL
    GROUP BY 2, 3, 4;
    INSERT INTO trip_length_counts (unit_s, packaging_type, bucket, brand, trips, length_s)
    SELECT 3600, packaging_type, bucket / 60, brand, sum(trips), sum(length_s)
    FROM trip_length_counts WHERE unit_s = 60
    GROUP BY 2, 3, 4;
    INSERT INTO trip_length_counts (unit_s, packaging_type, bucket, brand, trips, length_s)
    SELECT 86400, packaging_type, bucket / 24, brand, sum(trips), sum(length_s)
    FROM trip_length_counts WHERE unit_s = 3600
    GROUP BY 2, 3, 4;
$$;

SELECT rebuild_trip_lengths();
