-- Pre-weighed material rollups (docs/materials.md). Material flows of a day or an hour are
-- read from grams already weighed per packaging type, brand, material, type and stream,
-- instead of weighing every GTIN's counts against its declaration at query time, which
-- took 1.5 s for a year by day at 20 M events. The outcome of a stream is still read at
-- query time (the key keeps the stream), so correcting sorting_streams corrects history.
--
-- material_counts_15m (per GTIN and declaration) stays the source: the grams of a GTIN
-- are taken out of these rollups and put back when its declarations change
-- (declare_materials) or it moves to another packaging type or brand
-- (move_material_grams), and the day rows are rebuilt from it when the rollup zone
-- changes.

-- The grams of counts: their measured grams, and their unmeasured qty × the nominal weight
-- of their declaration. Counts without a nominal weight are unweighed (their qty, less
-- the measured). The one definition, used by the ingest and by material_grams_15m.
CREATE FUNCTION material_grams(
    qty bigint, measured_g double precision, measured_qty bigint, weight_g numeric
) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN measured_g::numeric + (qty - measured_qty) * coalesce(weight_g, 0);

CREATE FUNCTION material_unweighed_qty(qty bigint, measured_qty bigint, weight_g numeric)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN weight_g IS NULL THEN qty - measured_qty ELSE 0 END;

-- Each quarter hour's counts weighed: under the declaration it was filed under, with its
-- product's packaging type and brand as they are now (NULL for unregistered GTINs).
CREATE VIEW material_grams_15m AS
SELECT c.bucket, c.gtin, p.packaging_type_id AS packaging_type, p.brand, d.material, c.type,
       c.stream, c.qty, w.grams,
       coalesce(w.grams * d.recycled_content_pct / 100, 0) AS recycled_g,
       coalesce(w.grams * d.renewable_content_pct / 100, 0) AS renewable_g,
       CASE WHEN d.fibre_based THEN w.grams ELSE 0 END AS fibre_g,
       material_unweighed_qty(c.qty, c.measured_qty, d.weight_g) AS unweighed_qty
FROM material_counts_15m c
LEFT JOIN material_declarations d ON d.gtin = c.gtin AND d.declared_from = c.declared_from
LEFT JOIN products p ON p.gtin = c.gtin
CROSS JOIN LATERAL (
    SELECT material_grams(c.qty, c.measured_g, c.measured_qty, d.weight_g) AS grams
) w;

-- Σ of material_grams_15m per local day of the rollup zone (whole days there) and per UTC
-- hour (whole hours of whole-hour zones). qty is the Σ qty of the counts: a row whose qty
-- is 0 holds nothing and is deleted.
CREATE TABLE material_grams_daily (
    day            date NOT NULL,
    packaging_type text,
    brand          text,
    material       text,
    type           text NOT NULL,
    stream         text,
    qty            bigint NOT NULL,
    grams          numeric NOT NULL,
    recycled_g     numeric NOT NULL,
    renewable_g    numeric NOT NULL,
    fibre_g        numeric NOT NULL,
    unweighed_qty  bigint NOT NULL,
    CONSTRAINT material_grams_daily_key
        UNIQUE NULLS NOT DISTINCT (day, packaging_type, brand, material, type, stream)
);

CREATE TABLE material_grams_hourly (
    hour           timestamptz NOT NULL,
    packaging_type text,
    brand          text,
    material       text,
    type           text NOT NULL,
    stream         text,
    qty            bigint NOT NULL,
    grams          numeric NOT NULL,
    recycled_g     numeric NOT NULL,
    renewable_g    numeric NOT NULL,
    fibre_g        numeric NOT NULL,
    unweighed_qty  bigint NOT NULL,
    CONSTRAINT material_grams_hourly_key
        UNIQUE NULLS NOT DISTINCT (hour, packaging_type, brand, material, type, stream)
);

-- Adds `sign` × the grams of `of_gtin` from `since` on, keyed under packaging type
-- `keyed_type` and brand `keyed_brand`, to both rollups. With -1 before a change and 1
-- after it, the GTIN's grams follow the change; rows left empty are deleted. Callers hold
-- the GTIN's lock slot exclusively (schemas.rollups), so no batch counts meanwhile.
CREATE FUNCTION file_material_grams(
    of_gtin text, since timestamptz, sign integer, keyed_type text, keyed_brand text
) RETURNS void LANGUAGE sql AS $$
    WITH grams AS (
        SELECT g.bucket, g.material, g.type, g.stream, g.qty, g.grams, g.recycled_g,
               g.renewable_g, g.fibre_g, g.unweighed_qty
        FROM material_grams_15m g
        WHERE g.gtin = of_gtin AND g.bucket >= since
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
-- move_return_counts does its counts). The caller holds the GTIN's lock slot.
CREATE FUNCTION move_material_grams(
    of_gtin text, old_type text, old_brand text, new_type text, new_brand text
) RETURNS void LANGUAGE sql AS $$
    SELECT file_material_grams(of_gtin, '-infinity', -1, old_type, old_brand);
    SELECT file_material_grams(of_gtin, '-infinity', 1, new_type, new_brand);
$$;

-- Points the counts of `gtin` from `since` on at the declarations then in force (its
-- grams are taken out and put back by declare_materials, around this).
CREATE OR REPLACE FUNCTION refile_material_counts(of_gtin text, since timestamptz)
RETURNS void LANGUAGE sql AS $$
    WITH moved AS (
        DELETE FROM material_counts_15m
        WHERE gtin = of_gtin AND bucket >= since
        RETURNING *
    )
    INSERT INTO material_counts_15m
        (bucket, gtin, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT bucket, gtin, declaration_at(gtin, bucket), type, stream,
           sum(qty), sum(measured_g), sum(measured_qty)
    FROM moved GROUP BY 1, 2, 3, 4, 5;
$$;

-- As in 0014, and the GTIN's grams from `since` on are taken out of the grams rollups
-- under the old declarations and put back under the new ones.
CREATE OR REPLACE FUNCTION declare_materials(gtins text[], requested timestamptz)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
    product record;
    latest material_declarations%ROWTYPE;
    since timestamptz;
    used timestamptz;
BEGIN
    FOR product IN
        SELECT p.gtin, p.packaging_type_id, p.brand, t.material, t.weight_g,
               coalesce(p.recycled_content_pct, t.recycled_content_pct) AS recycled,
               coalesce(p.renewable_content_pct, t.renewable_content_pct) AS renewable,
               coalesce(p.fibre_based, t.fibre_based) AS fibre
        FROM products p JOIN packaging_types t ON t.id = p.packaging_type_id
        WHERE p.gtin = ANY (gtins)
        ORDER BY p.gtin
    LOOP
        SELECT * INTO latest FROM material_declarations d
        WHERE d.gtin = product.gtin ORDER BY d.declared_from DESC LIMIT 1;
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
        PERFORM file_material_grams(product.gtin, since, -1, product.packaging_type_id,
                                    product.brand);
        DELETE FROM material_declarations d
        WHERE d.gtin = product.gtin AND d.declared_from >= since;
        INSERT INTO material_declarations
            (gtin, declared_from, material, weight_g, recycled_content_pct,
             renewable_content_pct, fibre_based)
        VALUES (product.gtin, since, product.material, product.weight_g, product.recycled,
                product.renewable, product.fibre);
        PERFORM refile_material_counts(product.gtin, since);
        PERFORM file_material_grams(product.gtin, since, 1, product.packaging_type_id,
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

CREATE FUNCTION rebuild_material_hours_all() RETURNS void LANGUAGE sql AS $$
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
        (bucket, gtin, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT b.bucket, b.gtin, declaration_at(b.gtin, b.bucket), b.type, b.stream,
           b.qty, b.measured_g, b.measured_qty
    FROM (
        SELECT date_bin('15 minutes', e.ts, TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket,
               e.gtin, e.type, e.stream, sum(e.qty) AS qty,
               coalesce(sum(e.weight_g), 0) AS measured_g,
               coalesce(sum(e.qty) FILTER (WHERE e.weight_g IS NOT NULL), 0) AS measured_qty
        FROM events e
        WHERE e.type IN ('sold', 'returned', 'sorted')
        GROUP BY 1, 2, 3, 4
    ) b;
    SELECT rebuild_material_hours_all();
    SELECT rebuild_material_days_all();
$$;

DROP FUNCTION rebuild_material_days(text, timestamptz);
DROP TABLE material_counts_daily;

SELECT rebuild_material_hours_all();
SELECT rebuild_material_days_all();
