-- Day-level return counts per packaging type and brand, replacing the GTIN-keyed day
-- rollups of 0004: a year of daily return rates then reads one row per day, packaging
-- type and brand (a few thousand rows), however many products there are.
--
-- The day is local to the deployment's zone, kept in the database (rollup_zone) so every
-- worker and API process agrees on it; `looptrack db migrate` rebuilds these tables when
-- LOOPTRACK_TIMEZONE changes. A product's packaging type and brand are resolved when its
-- events are counted (NULL while the GTIN is unregistered); registering or re-assigning
-- a product moves its counts (move_return_counts). The GTIN lock slots below keep that
-- move and concurrent ingest from missing each other.

CREATE TABLE rollup_zone (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    zone     text NOT NULL
);

INSERT INTO rollup_zone (zone) VALUES (coalesce(current_setting('looptrack.timezone', true), 'UTC'));

CREATE TABLE return_counts_daily (
    day            date NOT NULL,
    packaging_type text,
    brand          text,
    sold           bigint NOT NULL,
    returned       bigint NOT NULL,
    rejected       bigint NOT NULL,
    CONSTRAINT return_counts_daily_key UNIQUE NULLS NOT DISTINCT (day, packaging_type, brand)
);

CREATE TABLE site_return_counts_daily (
    site_id        text NOT NULL,
    day            date NOT NULL,
    packaging_type text,
    brand          text,
    sold           bigint NOT NULL,
    returned       bigint NOT NULL,
    rejected       bigint NOT NULL,
    CONSTRAINT site_return_counts_daily_key
        UNIQUE NULLS NOT DISTINCT (site_id, day, packaging_type, brand)
);

-- A product's counts are found by GTIN when it is registered or re-assigned.
CREATE INDEX event_counts_15m_gtin ON event_counts_15m (gtin);

DROP TABLE event_counts_daily;
DROP TABLE site_counts_daily;

-- Both day tables from the 15-minute rollup, in the zone of rollup_zone. Callers hold
-- the rollup zone lock (schemas.rollups), so no batch is counted meanwhile.
CREATE FUNCTION rebuild_return_counts_daily() RETURNS void LANGUAGE sql AS $$
    TRUNCATE return_counts_daily, site_return_counts_daily;
    INSERT INTO site_return_counts_daily
        (site_id, day, packaging_type, brand, sold, returned, rejected)
    SELECT c.site_id, (c.bucket AT TIME ZONE z.zone)::date, p.packaging_type_id, p.brand,
           coalesce(sum(c.qty) FILTER (WHERE c.type = 'sold'), 0),
           coalesce(sum(c.qty) FILTER (WHERE c.type = 'returned'), 0),
           coalesce(sum(c.qty) FILTER (WHERE c.type = 'rejected'), 0)
    FROM event_counts_15m c
    CROSS JOIN rollup_zone z
    LEFT JOIN products p ON p.gtin = c.gtin
    WHERE c.type IN ('sold', 'returned', 'rejected')
    GROUP BY 1, 2, 3, 4;
    INSERT INTO return_counts_daily (day, packaging_type, brand, sold, returned, rejected)
    SELECT day, packaging_type, brand, sum(sold), sum(returned), sum(rejected)
    FROM site_return_counts_daily
    GROUP BY 1, 2, 3;
$$;

-- Moves a GTIN's counts from one (packaging type, brand) to another, e.g. when a GTIN
-- seen before it was registered becomes a product. Callers hold the GTIN's lock slot
-- exclusively. Rows left at zero are removed: a day without events has no row.
CREATE FUNCTION move_return_counts(
    move_gtin text, old_type text, old_brand text, new_type text, new_brand text
) RETURNS void LANGUAGE sql AS $$
    WITH counts AS (
        SELECT c.site_id, (c.bucket AT TIME ZONE z.zone)::date AS day,
               coalesce(sum(c.qty) FILTER (WHERE c.type = 'sold'), 0) AS sold,
               coalesce(sum(c.qty) FILTER (WHERE c.type = 'returned'), 0) AS returned,
               coalesce(sum(c.qty) FILTER (WHERE c.type = 'rejected'), 0) AS rejected
        FROM event_counts_15m c
        CROSS JOIN rollup_zone z
        WHERE c.gtin = move_gtin AND c.type IN ('sold', 'returned', 'rejected')
        GROUP BY 1, 2
    ), delta AS (
        SELECT site_id, day, old_type AS packaging_type, old_brand AS brand,
               -sold AS sold, -returned AS returned, -rejected AS rejected
        FROM counts
        UNION ALL
        SELECT site_id, day, new_type, new_brand, sold, returned, rejected FROM counts
    ), by_site AS (
        INSERT INTO site_return_counts_daily AS r
            (site_id, day, packaging_type, brand, sold, returned, rejected)
        SELECT * FROM delta ORDER BY site_id, day, packaging_type, brand
        ON CONFLICT (site_id, day, packaging_type, brand) DO UPDATE
        SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
            rejected = r.rejected + EXCLUDED.rejected
    )
    INSERT INTO return_counts_daily AS r (day, packaging_type, brand, sold, returned, rejected)
    SELECT day, packaging_type, brand, sum(sold), sum(returned), sum(rejected)
    FROM delta GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, packaging_type, brand) DO UPDATE
    SET sold = r.sold + EXCLUDED.sold, returned = r.returned + EXCLUDED.returned,
        rejected = r.rejected + EXCLUDED.rejected;

    DELETE FROM site_return_counts_daily
    WHERE packaging_type IS NOT DISTINCT FROM old_type AND brand IS NOT DISTINCT FROM old_brand
      AND sold = 0 AND returned = 0 AND rejected = 0;
    DELETE FROM return_counts_daily
    WHERE packaging_type IS NOT DISTINCT FROM old_type AND brand IS NOT DISTINCT FROM old_brand
      AND sold = 0 AND returned = 0 AND rejected = 0;
$$;

SELECT rebuild_return_counts_daily();
