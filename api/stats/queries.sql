-- Statistics queries (SPEC §7). They read the rollups, never the raw events.

-- name: return_rates
-- One row per bucket and packaging type; item classes not (yet) registered as products report
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
LEFT JOIN products p ON p.item_class = c.item_class
LEFT JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE c.bucket >= %(from)s AND c.bucket < %(to)s
  AND c.type IN ('sold', 'returned', 'rejected')
  AND (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
  AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
  AND (%(site_id)s::text IS NULL OR c.site_id = %(site_id)s)
GROUP BY 1, 2, t.weight_g
ORDER BY 1, 2 NULLS LAST

-- name: reuse
-- Reuse per packaging type from the aggregates the ingest keeps per item (migration 0010)
-- and per trip length (migration 0017). Trips per item are summed up as a histogram
-- first: the percentiles, means and targets are read off it. Trip days (SPEC §7) are read
-- off the trip-length counts, whatever the number of trips: the mean from their sums;
-- the median, percentile_cont(0.5) of item_trips.days, from the one or two middle trips,
-- found by rank among the days of length, then the hours of that day, the minutes of
-- that hour and the trips of that minute (the only trips read).
WITH per_item AS (
    SELECT p.packaging_type_id AS packaging_type, l.trips, l.in_loop,
           l.last_type IN ('sold', 'filled')
               AND l.last_ts < now() - make_interval(days => %(loss_after_days)s) AS lost
    FROM item_loops l
    JOIN products p ON p.item_class = l.item_class
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
), trip_lengths AS (
    SELECT packaging_type, bucket AS day, sum(trips)::bigint AS trips, sum(length_s) AS length_s
    FROM trip_length_counts
    WHERE unit_s = 86400
      AND (%(packaging_type)s::text IS NULL OR packaging_type = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR brand = %(brand)s)
    GROUP BY 1, 2
), trip_totals AS (
    SELECT packaging_type, sum(trips)::bigint AS trips, sum(length_s) AS length_s
    FROM trip_lengths GROUP BY 1
), by_day AS (
    SELECT packaging_type, day, trips,
           sum(trips) OVER (PARTITION BY packaging_type ORDER BY day)::bigint AS running
    FROM trip_lengths
), middle AS (
    -- The 0-based ranks percentile_cont(0.5) interpolates between (one when n is odd).
    SELECT DISTINCT t.packaging_type, r.rank
    FROM trip_totals t
    CROSS JOIN LATERAL (VALUES ((t.trips - 1) / 2), (t.trips / 2)) AS r (rank)
), middle_day AS (
    SELECT m.packaging_type, m.rank, d.day, m.rank - (d.running - d.trips) AS rank_in_day
    FROM middle m
    JOIN by_day d ON d.packaging_type = m.packaging_type
                 AND d.running - d.trips <= m.rank AND m.rank < d.running
), middle_hour AS (
    SELECT m.packaging_type, m.rank, h.bucket AS hour,
           m.rank_in_day - (h.running - h.trips) AS rank_in_hour
    FROM middle_day m
    CROSS JOIN LATERAL (
        SELECT bucket, trips, running
        FROM (
            SELECT c.bucket, sum(c.trips)::bigint AS trips,
                   sum(sum(c.trips)) OVER (ORDER BY c.bucket)::bigint AS running
            FROM trip_length_counts c
            WHERE c.packaging_type = m.packaging_type AND c.unit_s = 3600
              AND c.bucket >= m.day * 24 AND c.bucket < (m.day + 1) * 24
              AND (%(brand)s::text IS NULL OR c.brand = %(brand)s)
            GROUP BY c.bucket
        ) hours
        WHERE running > m.rank_in_day
        ORDER BY bucket
        LIMIT 1
    ) h
), middle_minute AS (
    SELECT m.packaging_type, m.rank, w.bucket AS minute,
           m.rank_in_hour - (w.running - w.trips) AS rank_in_minute
    FROM middle_hour m
    CROSS JOIN LATERAL (
        SELECT bucket, trips, running
        FROM (
            SELECT c.bucket, sum(c.trips)::bigint AS trips,
                   sum(sum(c.trips)) OVER (ORDER BY c.bucket)::bigint AS running
            FROM trip_length_counts c
            WHERE c.packaging_type = m.packaging_type AND c.unit_s = 60
              AND c.bucket >= m.hour * 60 AND c.bucket < (m.hour + 1) * 60
              AND (%(brand)s::text IS NULL OR c.brand = %(brand)s)
            GROUP BY c.bucket
        ) minutes
        WHERE running > m.rank_in_hour
        ORDER BY bucket
        LIMIT 1
    ) w
), middle_trip AS (
    SELECT m.packaging_type, m.rank, x.days
    FROM middle_minute m
    CROSS JOIN LATERAL (
        -- By item_trips_length: one index range per item class of the packaging type.
        SELECT t.days
        FROM products p
        JOIN item_trips t ON t.item_class = p.item_class
        WHERE p.packaging_type_id = m.packaging_type
          AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
          AND t.started_at IS NOT NULL
          AND t.ended_at - t.started_at >= make_interval(mins => m.minute)
          AND t.ended_at - t.started_at < make_interval(mins => m.minute + 1)
        ORDER BY t.ended_at - t.started_at
        OFFSET m.rank_in_minute
        LIMIT 1
    ) x
), trip_days AS (
    -- percentile_cont's own arithmetic (lo + fraction × (hi − lo), in float8), so the
    -- median is the one it gives over every trip.
    SELECT t.packaging_type, t.length_s / t.trips / 86400 AS mean_days,
           lo.days + 0.5::float8 * (hi.days - lo.days) AS median_days
    FROM trip_totals t
    JOIN middle_trip lo ON lo.packaging_type = t.packaging_type AND lo.rank = (t.trips - 1) / 2
    JOIN middle_trip hi ON hi.packaging_type = t.packaging_type AND hi.rank = t.trips / 2
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
SELECT d.event_id, d.item_class, d.serial, d.ts, d.previous_ts, d.device_id, d.site_id
FROM duplicate_returns d
LEFT JOIN products p ON p.item_class = d.item_class
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
-- The same answer as return_rates, without a site filter, from the hourly rollup
-- (migration 0006) for the UTC hours one bucket holds whole, and from event_counts_15m for
-- the quarter hours %(quarters)s of the hours %(split_hours)s that the window's bounds or a
-- bucket boundary cut (hours_across_buckets: in a zone with a :30 or :45 offset, each local
-- midnight cuts an hour). Each hour of the window is given its bucket once, then joined to
-- the counts.
WITH hours AS (
    SELECT h AS hour,
           CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
                ELSE date_trunc(%(unit)s, h AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
           END AS bucket_start
    FROM generate_series(%(from_hour)s::timestamptz, %(to)s::timestamptz - INTERVAL '1 hour',
                         INTERVAL '1 hour') AS h
    WHERE h <> ALL (%(split_hours)s::timestamptz[])
), counts AS (
    SELECT hs.bucket_start, r.packaging_type, r.sold, r.returned, r.rejected
    FROM return_counts_hourly r
    JOIN hours hs ON hs.hour = r.hour
    WHERE r.hour >= %(from_hour)s AND r.hour < %(to)s
      AND (%(packaging_type)s::text IS NULL OR r.packaging_type = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR r.brand = %(brand)s)
    UNION ALL
    SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
                ELSE date_trunc(%(unit)s, c.bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
           END,
           p.packaging_type_id,
           CASE WHEN c.type = 'sold' THEN c.qty ELSE 0 END,
           CASE WHEN c.type = 'returned' THEN c.qty ELSE 0 END,
           CASE WHEN c.type = 'rejected' THEN c.qty ELSE 0 END
    FROM event_counts_15m c
    LEFT JOIN products p ON p.item_class = c.item_class
    WHERE c.bucket = ANY (%(quarters)s::timestamptz[])
      AND c.type IN ('sold', 'returned', 'rejected')
      AND (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
      AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
), per_bucket AS (
    SELECT bucket_start, packaging_type, sum(sold)::bigint AS sold,
           sum(returned)::bigint AS returned, sum(rejected)::bigint AS rejected
    FROM counts
    GROUP BY 1, 2
)
SELECT b.bucket_start, b.packaging_type, b.sold, b.returned, b.rejected, t.weight_g
FROM per_bucket b
LEFT JOIN packaging_types t ON t.id = b.packaging_type
ORDER BY 1, 2 NULLS LAST

-- name: hours_across_buckets
-- The UTC hours of [%(from)s, %(to)s) (from %(from_hour)s, the hour %(from)s falls in) that
-- no bucket holds whole: those the window's bounds cut, and those a bucket boundary in
-- %(tz)s cuts. The hourly rollups cannot answer them; their quarter hours can.
SELECT coalesce(array_agg(h ORDER BY h), '{}')
FROM generate_series(%(from_hour)s::timestamptz, %(to)s::timestamptz - INTERVAL '15 minutes',
                     INTERVAL '1 hour') AS h
WHERE h < %(from)s OR h + INTERVAL '1 hour' > %(to)s
   OR (%(unit)s <> 'total'
       AND date_trunc(%(unit)s, h AT TIME ZONE %(tz)s)
           <> date_trunc(%(unit)s, (h + INTERVAL '45 minutes') AT TIME ZONE %(tz)s))

-- name: rejects_by_reason
-- Rejects by reason and packaging type over whole days of the rollup zone (migration 0011):
-- the whole months of the window from the month table, its other days from the day
-- table; %(brand)s limits it to a brand's products.
WITH counts AS (
    SELECT item_class, reason, qty FROM reject_counts_monthly
    WHERE month >= %(first_month)s AND month < %(end_month)s
    UNION ALL
    SELECT item_class, reason, qty FROM reject_counts_daily
    WHERE day >= %(from_day)s AND day < least(%(first_month)s, %(to_day)s)
    UNION ALL
    SELECT item_class, reason, qty FROM reject_counts_daily
    WHERE day >= greatest(%(end_month)s, %(from_day)s) AND day < %(to_day)s
), by_item_class AS (
    SELECT item_class, reason, sum(qty) AS qty FROM counts GROUP BY 1, 2
)
SELECT r.reason, p.packaging_type_id AS packaging_type, sum(r.qty)::bigint AS rejected
FROM by_item_class r
LEFT JOIN products p ON p.item_class = r.item_class
WHERE (%(brand)s::text IS NULL OR p.brand = %(brand)s)
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2 NULLS LAST
