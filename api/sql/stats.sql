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
-- Trips per serialised item, as defined by the loop_events view. A trip runs from its
-- first `sold` (else first `filled`) after the previous trip's return.
WITH ev AS (
    SELECT e.gtin, e.serial, e.ts, e.event_id, e.type, p.packaging_type_id AS packaging_type
    FROM events e
    JOIN products p ON p.gtin = e.gtin
    WHERE e.serial IS NOT NULL
      AND (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
), flagged AS (
    SELECT l.gtin, l.serial, l.ts, l.event_id, l.type, l.trip_end,
           p.packaging_type_id AS packaging_type
    FROM loop_events l
    JOIN products p ON p.gtin = l.gtin
    WHERE (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
), segmented AS (
    SELECT *, count(*) FILTER (WHERE trip_end) OVER (
                  PARTITION BY gtin, serial ORDER BY ts, event_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS segment
    FROM flagged
), trips AS (
    SELECT packaging_type,
           extract(epoch FROM max(ts) FILTER (WHERE trip_end)
                   - coalesce(min(ts) FILTER (WHERE type = 'sold'),
                              min(ts) FILTER (WHERE type = 'filled'))) / 86400 AS days
    FROM segmented
    GROUP BY gtin, serial, packaging_type, segment
    HAVING bool_or(trip_end)
), latest AS (
    SELECT DISTINCT ON (gtin, serial) gtin, serial, packaging_type, type, ts
    FROM ev
    ORDER BY gtin, serial, ts DESC, event_id DESC
), per_item AS (
    SELECT l.packaging_type,
           coalesce(f.trips, 0) AS trips,
           coalesce(f.in_loop, false) AS in_loop,
           l.type IN ('sold', 'filled') AND l.ts < now() - make_interval(days => %(loss_after_days)s)
               AS lost
    FROM latest l
    LEFT JOIN (
        SELECT gtin, serial, count(*) FILTER (WHERE trip_end) AS trips,
               bool_or(type IN ('sold', 'filled')) AS in_loop
        FROM flagged GROUP BY gtin, serial
    ) f USING (gtin, serial)
), histogram AS (
    SELECT packaging_type, jsonb_agg(jsonb_build_object('trips', trips, 'items', items)
                                     ORDER BY trips) AS histogram
    FROM (SELECT packaging_type, trips, count(*) AS items FROM per_item GROUP BY 1, 2) h
    GROUP BY packaging_type
), trip_days AS (
    SELECT packaging_type, avg(days) AS mean_days,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS median_days
    FROM trips WHERE days IS NOT NULL GROUP BY packaging_type
)
SELECT i.packaging_type, count(*) AS items, sum(i.trips) AS trips,
       avg(i.trips) AS mean_trips,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY i.trips) AS p50_trips,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY i.trips) AS p90_trips,
       max(i.trips) AS max_trips,
       t.target_trips,
       CASE WHEN t.reusable AND t.target_trips IS NOT NULL
            THEN count(*) FILTER (WHERE i.trips >= t.target_trips) END AS reached_target,
       d.mean_days, d.median_days,
       count(*) FILTER (WHERE i.lost) AS lost,
       count(*) FILTER (WHERE i.in_loop) AS in_loop,
       h.histogram
FROM per_item i
JOIN packaging_types t ON t.id = i.packaging_type
LEFT JOIN trip_days d ON d.packaging_type = i.packaging_type
LEFT JOIN histogram h ON h.packaging_type = i.packaging_type
GROUP BY i.packaging_type, t.target_trips, t.reusable, d.mean_days, d.median_days, h.histogram
ORDER BY i.packaging_type

-- name: duplicate_returns
-- Returns that end no trip (loop_events): possible cloned labels (SPEC §7).
SELECT l.event_id, l.gtin, l.serial, l.ts, l.previous_ts, l.device_id, l.site_id
FROM loop_events l
LEFT JOIN products p ON p.gtin = l.gtin
WHERE l.type = 'returned' AND l.previous_type = 'returned'
  AND l.ts >= %(from)s AND l.ts < %(to)s
  AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
ORDER BY l.ts, l.event_id
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
