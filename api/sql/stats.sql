-- Statistics queries (SPEC §7). They read the rollups, never the raw events.

-- name: return_rates
-- One row per bucket and packaging type; GTINs not (yet) registered as products report
-- under packaging type NULL. Buckets are local to %(tz)s, DST included.
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, c.bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
       END AS bucket_start,
       p.packaging_type_id AS packaging_type,
       coalesce(sum(c.qty) FILTER (WHERE c.type = 'sold'), 0) AS sold,
       coalesce(sum(c.qty) FILTER (WHERE c.type = 'returned'), 0) AS returned,
       coalesce(sum(c.qty) FILTER (WHERE c.type = 'rejected'), 0) AS rejected,
       t.weight_g
FROM event_counts_15m c
LEFT JOIN products p ON p.gtin = c.gtin
LEFT JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE c.bucket >= %(from)s AND c.bucket < %(to)s
  AND c.type IN ('sold', 'returned', 'rejected')
  AND (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
  AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
  AND (%(site_id)s::text IS NULL OR c.site_id = %(site_id)s)
GROUP BY 1, 2, t.weight_g
ORDER BY 1, 2 NULLS LAST

-- name: reuse
-- Reuse per packaging type from the aggregates the ingest keeps per item and per trip
-- (migration 0010). Trips per item are summed up as a histogram first: the percentiles,
-- means and targets are read off it.
WITH per_item AS (
    SELECT p.packaging_type_id AS packaging_type, l.trips, l.in_loop,
           l.last_type IN ('sold', 'filled')
               AND l.last_ts < now() - make_interval(days => %(loss_after_days)s) AS lost
    FROM item_loops l
    JOIN products p ON p.gtin = l.gtin
    WHERE (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
), histogram AS (
    SELECT packaging_type, trips, count(*) AS items, count(*) FILTER (WHERE lost) AS lost,
           count(*) FILTER (WHERE in_loop) AS in_loop
    FROM per_item GROUP BY 1, 2
), cumulative AS (
    SELECT h.*, sum(items) OVER (PARTITION BY packaging_type ORDER BY trips) AS running,
           sum(items) OVER (PARTITION BY packaging_type) AS total
    FROM histogram h
), trip_days AS (
    SELECT p.packaging_type_id AS packaging_type, avg(t.days) AS mean_days,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY t.days) AS median_days
    FROM item_trips t
    JOIN products p ON p.gtin = t.gtin
    WHERE t.days IS NOT NULL
      AND (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
    GROUP BY 1
)
SELECT c.packaging_type, sum(c.items)::bigint AS items, sum(c.trips * c.items)::bigint AS trips,
       sum(c.trips * c.items) / sum(c.items) AS mean_trips,
       -- percentile_disc: the smallest value whose cumulative share reaches the fraction
       min(c.trips) FILTER (WHERE c.running >= 0.5 * c.total) AS p50_trips,
       min(c.trips) FILTER (WHERE c.running >= 0.9 * c.total) AS p90_trips,
       max(c.trips) AS max_trips,
       t.target_trips,
       CASE WHEN t.reusable AND t.target_trips IS NOT NULL
            THEN coalesce(sum(c.items) FILTER (WHERE c.trips >= t.target_trips), 0)::bigint
       END AS reached_target,
       d.mean_days, d.median_days,
       sum(c.lost)::bigint AS lost,
       sum(c.in_loop)::bigint AS in_loop,
       jsonb_agg(jsonb_build_object('trips', c.trips, 'items', c.items) ORDER BY c.trips)
           AS histogram
FROM cumulative c
JOIN packaging_types t ON t.id = c.packaging_type
LEFT JOIN trip_days d ON d.packaging_type = c.packaging_type
GROUP BY c.packaging_type, t.target_trips, t.reusable, d.mean_days, d.median_days
ORDER BY c.packaging_type

-- name: duplicate_returns
-- Returns that ended no trip (SPEC §7: possible cloned labels), kept by the ingest.
SELECT d.event_id, d.gtin, d.serial, d.ts, d.previous_ts, d.device_id, d.site_id
FROM duplicate_returns d
LEFT JOIN products p ON p.gtin = d.gtin
WHERE d.ts >= %(from)s AND d.ts < %(to)s
  AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
ORDER BY d.ts, d.event_id
LIMIT %(limit)s

-- name: seq_gaps
SELECT device_id, gap_from, gap_to, gap_to - gap_from + 1 AS missing, detected_at
FROM seq_gaps
WHERE detected_at >= %(from)s AND detected_at < %(to)s
ORDER BY device_id, gap_from
LIMIT %(limit)s

-- name: return_rates_daily
-- The same answer as return_rates, from the day rollups (migration 0005): for windows of
-- whole local days in the zone they are kept in. A site filter reads the per-site table,
-- no site filter the all-sites one (the branch not taken is a one-time filter). Days are
-- summed first, so the zone arithmetic runs once per day and packaging type.
WITH per_day AS (
    SELECT c.day, c.packaging_type, sum(c.sold) AS sold, sum(c.returned) AS returned,
           sum(c.rejected) AS rejected
    FROM (
        SELECT day, packaging_type, brand, sold, returned, rejected
        FROM return_counts_daily
        WHERE %(site_id)s::text IS NULL AND day >= %(from_day)s AND day < %(to_day)s
        UNION ALL
        SELECT day, packaging_type, brand, sold, returned, rejected
        FROM site_return_counts_daily
        WHERE site_id = %(site_id)s AND day >= %(from_day)s AND day < %(to_day)s
    ) c
    WHERE (%(packaging_type)s::text IS NULL OR c.packaging_type = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR c.brand = %(brand)s)
    GROUP BY c.day, c.packaging_type
)
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, d.day::timestamp) AT TIME ZONE %(tz)s
       END AS bucket_start,
       d.packaging_type, sum(d.sold)::bigint AS sold, sum(d.returned)::bigint AS returned,
       sum(d.rejected)::bigint AS rejected, t.weight_g
FROM per_day d
LEFT JOIN packaging_types t ON t.id = d.packaging_type
GROUP BY 1, 2, t.weight_g
ORDER BY 1, 2 NULLS LAST

-- name: return_rates_hourly
-- The same answer as return_rates, from the hourly rollup (migration 0006): for windows
-- on whole hours in zones whose offset is a whole number of hours, without a site filter.
-- Each hour of the window is given its bucket once, then joined to the counts.
WITH hours AS (
    SELECT h AS hour,
           CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
                ELSE date_trunc(%(unit)s, h AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
           END AS bucket_start
    FROM generate_series(%(from)s::timestamptz, %(to)s::timestamptz - INTERVAL '1 hour',
                         INTERVAL '1 hour') AS h
), per_bucket AS (
    SELECT hs.bucket_start, r.packaging_type, sum(r.sold)::bigint AS sold,
           sum(r.returned)::bigint AS returned, sum(r.rejected)::bigint AS rejected
    FROM return_counts_hourly r
    JOIN hours hs ON hs.hour = r.hour
    WHERE r.hour >= %(from)s AND r.hour < %(to)s
      AND (%(packaging_type)s::text IS NULL OR r.packaging_type = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR r.brand = %(brand)s)
    GROUP BY 1, 2
)
SELECT b.bucket_start, b.packaging_type, b.sold, b.returned, b.rejected, t.weight_g
FROM per_bucket b
LEFT JOIN packaging_types t ON t.id = b.packaging_type
ORDER BY 1, 2 NULLS LAST
