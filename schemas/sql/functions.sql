-- Every SQL function of the schema, in its current version. The tables and views they
-- work on are in schema.sql.
--
-- `looptrack db migrate` applies this file after the pending migrations, in the same
-- transaction and under the same advisory lock (schemas/migrations.py), on every run, with
-- the bodies checked against the tables as migrated. Hence:
--   * A function is changed here, not in a migration: the next migrate replaces it
--     (CREATE OR REPLACE). Migrations that already ran keep creating the versions their
--     own backfills used; a new migration must not call a function of this file (on a
--     database several versions behind it is missing or older when the migration runs):
--     it writes its backfill in plain SQL, or in a pg_temp function of its own.
--   * A name keeps its arguments, result and meaning, because the worker or API of the
--     previous release may still call it while a deployment rolls. A change to any of
--     them is a new function with a versioned name (return_counts_of_v2); the old one
--     stays here until a migration drops it, once no running process can call it.
--   * A function goes by a migration dropping it and its removal from this file.
--   * Nothing here depends on TimescaleDB: the file runs on plain PostgreSQL as well. A
--     function that ever needs it asks pg_extension when it runs and calls the
--     extension through EXECUTE, as migration 0016 does.
-- When the database knows a migration this code does not (newer code migrated it), the
-- file is not applied: older versions never replace newer ones.
-- tests/schemas/test_schema.py checks that schema.sql with this file is what migrate builds.
--
-- Locks: callers that change rollups hold the lock slots of schemas.rollups (a batch
-- counting item classes holds theirs shared; a product change its item class's
-- exclusively; a rebuild all of them).


-- ---------------------------------------------------------------------------------------
-- Return counts (SPEC §7: sold, returned, rejected)
-- ---------------------------------------------------------------------------------------

-- The one place that says which events count in which return-count column: Σ qty of
-- `sold`, `returned` and `rejected` events; any other type counts in none (no row). Used
-- as `CROSS JOIN LATERAL return_counts_of(c.type, c.qty) r` and summed as r.sold,
-- r.returned, r.rejected; the planner inlines it (SQL, IMMUTABLE, not STRICT, one
-- SELECT), so the ingest's batch statement pays nothing for it.
CREATE OR REPLACE FUNCTION return_counts_of(type text, qty bigint)
RETURNS TABLE (sold bigint, returned bigint, rejected bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE type WHEN 'sold' THEN qty ELSE 0 END,
           CASE type WHEN 'returned' THEN qty ELSE 0 END,
           CASE type WHEN 'rejected' THEN qty ELSE 0 END
    WHERE type IN ('sold', 'returned', 'rejected')
$$;

-- Both day tables from the 15-minute rollup, in the zone of rollup_zone. Callers hold all
-- lock slots (schemas.rollups.set_zone), so no batch is counted meanwhile.
CREATE OR REPLACE FUNCTION rebuild_return_counts_daily() RETURNS void LANGUAGE sql AS $$
    TRUNCATE return_counts_daily, site_return_counts_daily;
    INSERT INTO site_return_counts_daily
        (site_id, day, packaging_type, brand, sold, returned, rejected)
    SELECT c.site_id, (c.bucket AT TIME ZONE z.zone)::date, p.packaging_type_id, p.brand,
           sum(r.sold), sum(r.returned), sum(r.rejected)
    FROM event_counts_15m c
    CROSS JOIN LATERAL return_counts_of(c.type, c.qty) r
    CROSS JOIN rollup_zone z
    LEFT JOIN products p ON p.item_class = c.item_class
    GROUP BY 1, 2, 3, 4;
    INSERT INTO return_counts_daily (day, packaging_type, brand, sold, returned, rejected)
    SELECT day, packaging_type, brand, sum(sold), sum(returned), sum(rejected)
    FROM site_return_counts_daily
    GROUP BY 1, 2, 3;
$$;

-- The hourly table from the 15-minute rollup (also for bench scripts that load events by
-- SQL).
CREATE OR REPLACE FUNCTION rebuild_return_counts_hourly() RETURNS void LANGUAGE sql AS $$
    TRUNCATE return_counts_hourly;
    INSERT INTO return_counts_hourly (hour, packaging_type, brand, sold, returned, rejected)
    SELECT date_bin('1 hour', c.bucket, TIMESTAMPTZ '2000-01-01 00:00+00'),
           p.packaging_type_id, p.brand, sum(r.sold), sum(r.returned), sum(r.rejected)
    FROM event_counts_15m c
    CROSS JOIN LATERAL return_counts_of(c.type, c.qty) r
    LEFT JOIN products p ON p.item_class = c.item_class
    GROUP BY 1, 2, 3;
$$;

-- Moves an item class's counts from one (packaging type, brand) to another in the hour, day and
-- site-day tables, e.g. when an item class seen before it was registered becomes a product.
-- Callers hold the item class's lock slot exclusively. Rows left at zero are removed: an hour
-- or day without events has no row.
CREATE OR REPLACE FUNCTION move_return_counts(
    move_item_class text, old_type text, old_brand text, new_type text, new_brand text
) RETURNS void LANGUAGE sql AS $$
    WITH counts AS (
        SELECT c.site_id, c.bucket, sum(r.sold) AS sold, sum(r.returned) AS returned,
               sum(r.rejected) AS rejected
        FROM event_counts_15m c
        CROSS JOIN LATERAL return_counts_of(c.type, c.qty) r
        WHERE c.item_class = move_item_class
        GROUP BY 1, 2
    ), delta AS (
        SELECT site_id, bucket, old_type AS packaging_type, old_brand AS brand,
               -sold AS sold, -returned AS returned, -rejected AS rejected
        FROM counts
        UNION ALL
        SELECT site_id, bucket, new_type, new_brand, sold, returned, rejected FROM counts
    ), by_site AS (
        INSERT INTO site_return_counts_daily AS r
            (site_id, day, packaging_type, brand, sold, returned, rejected)
        SELECT d.site_id, (d.bucket AT TIME ZONE z.zone)::date, d.packaging_type, d.brand,
               sum(d.sold), sum(d.returned), sum(d.rejected)
        FROM delta d CROSS JOIN rollup_zone z
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (site_id, day, packaging_type, brand) DO UPDATE
        SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
            rejected = r.rejected + EXCLUDED.rejected
    ), by_hour AS (
        INSERT INTO return_counts_hourly AS r
            (hour, packaging_type, brand, sold, returned, rejected)
        SELECT date_bin('1 hour', bucket, TIMESTAMPTZ '2000-01-01 00:00+00'), packaging_type,
               brand, sum(sold), sum(returned), sum(rejected)
        FROM delta GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (hour, packaging_type, brand) DO UPDATE
        SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
            rejected = r.rejected + EXCLUDED.rejected
    )
    INSERT INTO return_counts_daily AS r (day, packaging_type, brand, sold, returned, rejected)
    SELECT (d.bucket AT TIME ZONE z.zone)::date, d.packaging_type, d.brand,
           sum(d.sold), sum(d.returned), sum(d.rejected)
    FROM delta d CROSS JOIN rollup_zone z
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, packaging_type, brand) DO UPDATE
    SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
        rejected = r.rejected + EXCLUDED.rejected;

    DELETE FROM site_return_counts_daily
    WHERE packaging_type IS NOT DISTINCT FROM old_type AND brand IS NOT DISTINCT FROM old_brand
      AND sold = 0 AND returned = 0 AND rejected = 0;
    DELETE FROM return_counts_daily
    WHERE packaging_type IS NOT DISTINCT FROM old_type AND brand IS NOT DISTINCT FROM old_brand
      AND sold = 0 AND returned = 0 AND rejected = 0;
    DELETE FROM return_counts_hourly
    WHERE packaging_type IS NOT DISTINCT FROM old_type AND brand IS NOT DISTINCT FROM old_brand
      AND sold = 0 AND returned = 0 AND rejected = 0;
$$;


-- ---------------------------------------------------------------------------------------
-- Rejects by reason
-- ---------------------------------------------------------------------------------------

-- Both reject tables in the rollup zone, from the raw rejected events (reasons are not in
-- the 15-minute rollup). Callers hold all lock slots.
CREATE OR REPLACE FUNCTION rebuild_reject_counts_daily() RETURNS void LANGUAGE sql AS $$
    TRUNCATE reject_counts_daily, reject_counts_monthly;
    INSERT INTO reject_counts_daily (day, item_class, reason, qty, events)
    SELECT (e.ts AT TIME ZONE z.zone)::date, e.item_class, e.reason, sum(e.qty), count(*)
    FROM events e CROSS JOIN rollup_zone z
    WHERE e.type = 'rejected'
    GROUP BY 1, 2, 3;
    INSERT INTO reject_counts_monthly (month, item_class, reason, qty, events)
    SELECT date_trunc('month', day)::date, item_class, reason, sum(qty), sum(events)
    FROM reject_counts_daily
    GROUP BY 1, 2, 3;
$$;


-- ---------------------------------------------------------------------------------------
-- Material flows (docs/materials.md)
-- ---------------------------------------------------------------------------------------

-- The declaration of `item_class` in force at `instant` (NULL: none yet).
CREATE OR REPLACE FUNCTION declaration_at(of_item_class text, instant timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT max(d.declared_from) FROM material_declarations d
    WHERE d.item_class = of_item_class AND d.declared_from <= instant
$$;

-- The grams of counts: their measured grams, and their unmeasured qty × the nominal weight
-- of their declaration. Counts without a nominal weight are unweighed (their qty, less
-- the measured). The one definition, used by the ingest and by material_grams_15m.
CREATE OR REPLACE FUNCTION material_grams(
    qty bigint, measured_g double precision, measured_qty bigint, weight_g numeric
) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN measured_g::numeric + (qty - measured_qty) * coalesce(weight_g, 0);

CREATE OR REPLACE FUNCTION material_unweighed_qty(qty bigint, measured_qty bigint, weight_g numeric)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN weight_g IS NULL THEN qty - measured_qty ELSE 0 END;

-- Points the counts of `item_class` from `since` on at the declarations then in force (its
-- grams are taken out and put back by declare_materials, around this).
CREATE OR REPLACE FUNCTION refile_material_counts(of_item_class text, since timestamptz)
RETURNS void LANGUAGE sql AS $$
    WITH moved AS (
        DELETE FROM material_counts_15m
        WHERE item_class = of_item_class AND bucket >= since
        RETURNING *
    )
    INSERT INTO material_counts_15m
        (bucket, item_class, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT bucket, item_class, declaration_at(item_class, bucket), type, stream,
           sum(qty), sum(measured_g), sum(measured_qty)
    FROM moved GROUP BY 1, 2, 3, 4, 5;
$$;

-- Adds `sign` × the grams of `of_item_class` from `since` on, keyed under packaging type
-- `keyed_type` and brand `keyed_brand`, to both rollups. With -1 before a change and 1
-- after it, the item class's grams follow the change; rows left empty are deleted. Callers hold
-- the item class's lock slot exclusively (schemas.rollups), so no batch counts meanwhile.
CREATE OR REPLACE FUNCTION file_material_grams(
    of_item_class text, since timestamptz, sign integer, keyed_type text, keyed_brand text
) RETURNS void LANGUAGE sql AS $$
    WITH grams AS (
        SELECT g.bucket, g.material, g.type, g.stream, g.qty, g.grams, g.recycled_g,
               g.renewable_g, g.fibre_g, g.unweighed_qty
        FROM material_grams_15m g
        WHERE g.item_class = of_item_class AND g.bucket >= since
    ), by_day AS (
        INSERT INTO material_grams_daily AS r
            (day, packaging_type, brand, material, type, stream, qty, grams, recycled_g,
             renewable_g, fibre_g, unweighed_qty)
        SELECT (g.bucket AT TIME ZONE z.zone)::date, keyed_type, keyed_brand, g.material,
               g.type, g.stream, sign * sum(g.qty), sign * sum(g.grams),
               sign * sum(g.recycled_g), sign * sum(g.renewable_g), sign * sum(g.fibre_g),
               sign * sum(g.unweighed_qty)
        FROM grams g CROSS JOIN rollup_zone z
        GROUP BY 1, 4, 5, 6 ORDER BY 1, 4, 5, 6
        ON CONFLICT (day, packaging_type, brand, material, type, stream) DO UPDATE
        SET qty = r.qty + EXCLUDED.qty, grams = r.grams + EXCLUDED.grams,
            recycled_g = r.recycled_g + EXCLUDED.recycled_g,
            renewable_g = r.renewable_g + EXCLUDED.renewable_g,
            fibre_g = r.fibre_g + EXCLUDED.fibre_g,
            unweighed_qty = r.unweighed_qty + EXCLUDED.unweighed_qty
    )
    INSERT INTO material_grams_hourly AS r
        (hour, packaging_type, brand, material, type, stream, qty, grams, recycled_g,
         renewable_g, fibre_g, unweighed_qty)
    SELECT date_bin('1 hour', g.bucket, TIMESTAMPTZ '2000-01-01 00:00+00'), keyed_type,
           keyed_brand, g.material, g.type, g.stream, sign * sum(g.qty), sign * sum(g.grams),
           sign * sum(g.recycled_g), sign * sum(g.renewable_g), sign * sum(g.fibre_g),
           sign * sum(g.unweighed_qty)
    FROM grams g
    GROUP BY 1, 4, 5, 6 ORDER BY 1, 4, 5, 6
    ON CONFLICT (hour, packaging_type, brand, material, type, stream) DO UPDATE
    SET qty = r.qty + EXCLUDED.qty, grams = r.grams + EXCLUDED.grams,
        recycled_g = r.recycled_g + EXCLUDED.recycled_g,
        renewable_g = r.renewable_g + EXCLUDED.renewable_g,
        fibre_g = r.fibre_g + EXCLUDED.fibre_g,
        unweighed_qty = r.unweighed_qty + EXCLUDED.unweighed_qty;

    DELETE FROM material_grams_daily r USING rollup_zone z
    WHERE r.qty = 0 AND r.day >= (since AT TIME ZONE z.zone)::date
      AND r.packaging_type IS NOT DISTINCT FROM keyed_type
      AND r.brand IS NOT DISTINCT FROM keyed_brand;
    DELETE FROM material_grams_hourly r
    WHERE r.qty = 0 AND r.hour >= date_bin('1 hour', since, TIMESTAMPTZ '2000-01-01 00:00+00')
      AND r.packaging_type IS NOT DISTINCT FROM keyed_type
      AND r.brand IS NOT DISTINCT FROM keyed_brand;
$$;

-- A product moved to another packaging type or brand takes all its grams along (as
-- move_return_counts does its counts). The caller holds the item class's lock slot.
CREATE OR REPLACE FUNCTION move_material_grams(
    of_item_class text, old_type text, old_brand text, new_type text, new_brand text
) RETURNS void LANGUAGE sql AS $$
    SELECT file_material_grams(of_item_class, '-infinity', -1, old_type, old_brand);
    SELECT file_material_grams(of_item_class, '-infinity', 1, new_type, new_brand);
$$;

-- Records what `item_classes` declare now (their packaging type's figures, overridden by their
-- own) from `requested`, or from the next quarter hour when NULL; an item class's first
-- declaration starts at -infinity. Declarations from then on that it replaces are
-- dropped, counted events re-filed, and the item class's grams from then on taken out of the
-- grams rollups under the old declarations and put back under the new ones. Returns the
-- start it used, NULL if nothing changed.
CREATE OR REPLACE FUNCTION declare_materials(item_classes text[], requested timestamptz)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
    product record;
    latest material_declarations%ROWTYPE;
    since timestamptz;
    used timestamptz;
BEGIN
    FOR product IN
        SELECT p.item_class, p.packaging_type_id, p.brand, t.material, t.weight_g,
               coalesce(p.recycled_content_pct, t.recycled_content_pct) AS recycled,
               coalesce(p.renewable_content_pct, t.renewable_content_pct) AS renewable,
               coalesce(p.fibre_based, t.fibre_based) AS fibre
        FROM products p JOIN packaging_types t ON t.id = p.packaging_type_id
        WHERE p.item_class = ANY (item_classes)
        ORDER BY p.item_class
    LOOP
        SELECT * INTO latest FROM material_declarations d
        WHERE d.item_class = product.item_class ORDER BY d.declared_from DESC LIMIT 1;
        IF NOT FOUND THEN
            since := '-infinity';
        ELSIF requested IS NULL
              AND (latest.material, latest.weight_g, latest.recycled_content_pct,
                   latest.renewable_content_pct, latest.fibre_based)
                  IS NOT DISTINCT FROM
                  (product.material, product.weight_g, product.recycled, product.renewable,
                   product.fibre) THEN
            CONTINUE;
        ELSE
            since := coalesce(
                date_bin('15 minutes', requested, TIMESTAMPTZ '2000-01-01 00:00+00'),
                date_bin('15 minutes', now(), TIMESTAMPTZ '2000-01-01 00:00+00')
                    + interval '15 minutes');
        END IF;
        PERFORM file_material_grams(product.item_class, since, -1, product.packaging_type_id,
                                    product.brand);
        DELETE FROM material_declarations d
        WHERE d.item_class = product.item_class AND d.declared_from >= since;
        INSERT INTO material_declarations
            (item_class, declared_from, material, weight_g, recycled_content_pct,
             renewable_content_pct, fibre_based)
        VALUES (product.item_class, since, product.material, product.weight_g, product.recycled,
                product.renewable, product.fibre);
        PERFORM refile_material_counts(product.item_class, since);
        PERFORM file_material_grams(product.item_class, since, 1, product.packaging_type_id,
                                    product.brand);
        used := since;
    END LOOP;
    RETURN used;
END
$$;

-- Every day row from the quarter hours (also when the rollup zone changes).
CREATE OR REPLACE FUNCTION rebuild_material_days_all() RETURNS void LANGUAGE sql AS $$
    TRUNCATE material_grams_daily;
    INSERT INTO material_grams_daily
        (day, packaging_type, brand, material, type, stream, qty, grams, recycled_g,
         renewable_g, fibre_g, unweighed_qty)
    SELECT (g.bucket AT TIME ZONE z.zone)::date, g.packaging_type, g.brand, g.material,
           g.type, g.stream, sum(g.qty), sum(g.grams), sum(g.recycled_g),
           sum(g.renewable_g), sum(g.fibre_g), sum(g.unweighed_qty)
    FROM material_grams_15m g CROSS JOIN rollup_zone z
    GROUP BY 1, 2, 3, 4, 5, 6;
$$;

-- Every hour row from the quarter hours.
CREATE OR REPLACE FUNCTION rebuild_material_hours_all() RETURNS void LANGUAGE sql AS $$
    TRUNCATE material_grams_hourly;
    INSERT INTO material_grams_hourly
        (hour, packaging_type, brand, material, type, stream, qty, grams, recycled_g,
         renewable_g, fibre_g, unweighed_qty)
    SELECT date_bin('1 hour', g.bucket, TIMESTAMPTZ '2000-01-01 00:00+00'), g.packaging_type,
           g.brand, g.material, g.type, g.stream, sum(g.qty), sum(g.grams),
           sum(g.recycled_g), sum(g.renewable_g), sum(g.fibre_g), sum(g.unweighed_qty)
    FROM material_grams_15m g
    GROUP BY 1, 2, 3, 4, 5, 6;
$$;

-- Every quarter hour, hour and day row again from the raw events (bench scripts that load
-- events by SQL).
CREATE OR REPLACE FUNCTION rebuild_material_counts() RETURNS void LANGUAGE sql AS $$
    TRUNCATE material_counts_15m;
    INSERT INTO material_counts_15m
        (bucket, item_class, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT b.bucket, b.item_class, declaration_at(b.item_class, b.bucket), b.type, b.stream,
           b.qty, b.measured_g, b.measured_qty
    FROM (
        SELECT date_bin('15 minutes', e.ts, TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket,
               e.item_class, e.type, e.stream, sum(e.qty) AS qty,
               coalesce(sum(e.weight_g), 0) AS measured_g,
               coalesce(sum(e.qty) FILTER (WHERE e.weight_g IS NOT NULL), 0) AS measured_qty
        FROM events e
        WHERE e.type IN ('sold', 'returned', 'sorted')
        GROUP BY 1, 2, 3, 4
    ) b;
    SELECT rebuild_material_hours_all();
    SELECT rebuild_material_days_all();
$$;


-- ---------------------------------------------------------------------------------------
-- Trips (SPEC §7 trip_days)
-- ---------------------------------------------------------------------------------------

-- A trip's length in seconds, exact to the microsecond; never negative (a trip starts at
-- a `sold` or `filled` before its `returned` in SPEC §7's order).
CREATE OR REPLACE FUNCTION trip_seconds(started_at timestamptz, ended_at timestamptz)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN extract(epoch FROM ended_at - started_at);

-- Adds trips (sign 1) or takes them away (sign -1) under their packaging types and brands,
-- in every unit. Rows are locked in key order, and those left at zero removed: no trips,
-- no row.
CREATE OR REPLACE FUNCTION count_trip_lengths(
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

-- The trigger products_move_trip_lengths (schema.sql): a product's item class filed under
-- another packaging type or brand (or first registered, or removed) takes its trips from
-- the old counts to the new ones. Deferred to the end of the transaction, so that a
-- product change takes its rollup rows in the order a batch does (the return rollups that
-- schemas.rollups.move_counts moves first, these last); the caller holds the item class's
-- lock slot (schemas.rollups.lock_products) until then.
CREATE OR REPLACE FUNCTION move_trip_lengths() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.item_class, NEW.packaging_type_id, NEW.brand)
                            = (OLD.item_class, OLD.packaging_type_id, OLD.brand) THEN
        RETURN NULL;
    END IF;
    -- Old and new counts in one call: their rows locked together, in key order.
    PERFORM count_trip_lengths(array_agg(k.packaging_type), array_agg(k.brand),
                               array_agg(trip_seconds(t.started_at, t.ended_at)),
                               array_agg(k.sign))
    FROM (
        SELECT OLD.item_class, OLD.packaging_type_id, OLD.brand, -1 WHERE TG_OP <> 'INSERT'
        UNION ALL
        SELECT NEW.item_class, NEW.packaging_type_id, NEW.brand, 1 WHERE TG_OP <> 'DELETE'
    ) AS k (item_class, packaging_type, brand, sign)
    JOIN item_trips t ON t.item_class = k.item_class AND t.started_at IS NOT NULL;
    RETURN NULL;
END
$$;

-- The counts from item_trips (also for bench/trips.py, which loads trips by SQL): minutes
-- first, then hours and days from them.
CREATE OR REPLACE FUNCTION rebuild_trip_lengths() RETURNS void LANGUAGE sql AS $$
    TRUNCATE trip_length_counts;
    INSERT INTO trip_length_counts (unit_s, packaging_type, bucket, brand, trips, length_s)
    SELECT 60, p.packaging_type_id, div(l.seconds, 60)::integer, p.brand, count(*),
           sum(l.seconds)
    FROM item_trips t
    JOIN products p ON p.item_class = t.item_class
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


-- ---------------------------------------------------------------------------------------
-- Retention (docs/operations.md)
-- ---------------------------------------------------------------------------------------

-- Raises unless all history is still there: for operations that re-read raw events or
-- quarter-hour rows from the beginning. `needed_for` says what, `advice` what to do instead.
CREATE OR REPLACE FUNCTION require_complete_history(needed_for text, advice text)
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
    gone_before timestamptz := (SELECT horizon FROM retention_state);
BEGIN
    IF gone_before IS NOT NULL THEN
        RAISE EXCEPTION '% needs every raw event and quarter-hour count, but those before % '
                        'were pruned (LOOPTRACK_RETENTION_DAYS); %',
                        needed_for, to_char(gone_before AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS"Z"'), advice
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;
