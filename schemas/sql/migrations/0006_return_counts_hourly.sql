-- Hourly return counts per packaging type and brand, in UTC hours. Every zone whose
-- offset is a whole number of hours (UTC, all of Europe and the Americas…) has local days
-- made of whole UTC hours, so return rates in a zone other than the rollup zone read
-- about 24 rows per day and packaging type instead of every quarter hour of every GTIN
-- and site. Zones with :30/:45 offsets, windows on quarter hours and site filters
-- outside the rollup zone still use event_counts_15m. Kept like the day rollups: by the
-- worker in the batch's transaction, moved with a product by move_return_counts.
CREATE TABLE return_counts_hourly (
    hour           timestamptz NOT NULL,
    packaging_type text,
    brand          text,
    sold           bigint NOT NULL,
    returned       bigint NOT NULL,
    rejected       bigint NOT NULL,
    CONSTRAINT return_counts_hourly_key UNIQUE NULLS NOT DISTINCT (hour, packaging_type, brand)
);

-- From the 15-minute rollup (also for bench/stats.py, which loads events by SQL).
CREATE FUNCTION rebuild_return_counts_hourly() RETURNS void LANGUAGE sql AS $$
    TRUNCATE return_counts_hourly;
    INSERT INTO return_counts_hourly (hour, packaging_type, brand, sold, returned, rejected)
    SELECT date_bin('1 hour', c.bucket, TIMESTAMPTZ '2000-01-01 00:00+00'),
           p.packaging_type_id, p.brand,
           coalesce(sum(c.qty) FILTER (WHERE c.type = 'sold'), 0),
           coalesce(sum(c.qty) FILTER (WHERE c.type = 'returned'), 0),
           coalesce(sum(c.qty) FILTER (WHERE c.type = 'rejected'), 0)
    FROM event_counts_15m c
    LEFT JOIN products p ON p.gtin = c.gtin
    WHERE c.type IN ('sold', 'returned', 'rejected')
    GROUP BY 1, 2, 3;
$$;

SELECT rebuild_return_counts_hourly();

-- As in 0005, and the hourly counts move too.
CREATE OR REPLACE FUNCTION move_return_counts(
    move_gtin text, old_type text, old_brand text, new_type text, new_brand text
) RETURNS void LANGUAGE sql AS $$
    WITH counts AS (
        SELECT c.site_id, c.bucket,
               coalesce(sum(c.qty) FILTER (WHERE c.type = 'sold'), 0) AS sold,
               coalesce(sum(c.qty) FILTER (WHERE c.type = 'returned'), 0) AS returned,
               coalesce(sum(c.qty) FILTER (WHERE c.type = 'rejected'), 0) AS rejected
        FROM event_counts_15m c
        WHERE c.gtin = move_gtin AND c.type IN ('sold', 'returned', 'rejected')
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
