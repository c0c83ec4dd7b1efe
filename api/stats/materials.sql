-- Material flows (docs/materials.md). They read the grams the material rollups weighed
-- (migrations 0014, 0015), never the raw events. Each `*_window` query gives the grams of
-- a window per bucket, packaging type, brand, material, type and stream;
-- `material_flows` adds them up.

-- name: material_window_daily
-- Whole local days of the rollup zone (the caller checks that %(tz)s is that zone).
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, c.day::timestamp) AT TIME ZONE %(tz)s
       END AS bucket_start,
       c.packaging_type, c.brand, c.material, c.type, c.stream, c.qty, c.grams, c.recycled_g,
       c.renewable_g, c.fibre_g, c.unweighed_qty
FROM material_grams_daily c
WHERE c.day >= %(from_day)s AND c.day < %(to_day)s

-- name: material_window_hourly
-- Any window on quarter hours, in any zone: the UTC hours one bucket holds whole from the
-- hour rows; the hours %(split_hours)s that the window's bounds or a bucket boundary cut
-- (in a zone with a :30 or :45 offset, each local midnight cuts an hour) by their quarter
-- hours %(quarters)s, weighed at query time (the caller finds both).
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, c.hour AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
       END AS bucket_start,
       c.packaging_type, c.brand, c.material, c.type, c.stream, c.qty, c.grams, c.recycled_g,
       c.renewable_g, c.fibre_g, c.unweighed_qty
FROM material_grams_hourly c
WHERE c.hour >= %(from_hour)s AND c.hour < %(to)s
  AND c.hour <> ALL (%(split_hours)s::timestamptz[])
UNION ALL
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, c.bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
       END,
       c.packaging_type, c.brand, c.material, c.type, c.stream, c.qty, c.grams, c.recycled_g,
       c.renewable_g, c.fibre_g, c.unweighed_qty
FROM material_grams_15m c
WHERE c.bucket = ANY (%(quarters)s::timestamptz[])

-- name: material_flows
-- Grams per bucket and material; a stream's outcome is read now. The window's grams come
-- from one of the queries above; api/materials.py turns them into kg and rates.
WITH grams AS (
{window}
), flows AS (
    SELECT g.bucket_start, g.material, g.type,
           CASE WHEN g.type <> 'sorted' THEN NULL ELSE coalesce(s.outcome, 'unmapped') END
               AS outcome,
           g.qty, g.grams, g.recycled_g, g.renewable_g, g.fibre_g, g.unweighed_qty
    FROM grams g
    LEFT JOIN sorting_streams s ON s.stream = g.stream
    WHERE (%(brand)s::text IS NULL OR g.brand = %(brand)s)
      AND (%(packaging_type)s::text IS NULL OR g.packaging_type = %(packaging_type)s)
      AND (NOT %(placed_only)s OR g.type = 'sold')
)
SELECT bucket_start, material,
       coalesce(sum(grams) FILTER (WHERE type = 'sold'), 0) AS placed_g,
       coalesce(sum(grams) FILTER (WHERE type = 'returned'), 0) AS collected_g,
       coalesce(sum(grams) FILTER (WHERE type = 'sorted'), 0) AS sorted_g,
       coalesce(sum(grams) FILTER (WHERE outcome = 'reuse'), 0) AS sorted_reuse_g,
       coalesce(sum(grams) FILTER (WHERE outcome = 'material_recycling'), 0)
           AS sorted_recycling_g,
       coalesce(sum(grams) FILTER (WHERE outcome = 'energy_recovery'), 0)
           AS sorted_energy_recovery_g,
       coalesce(sum(grams) FILTER (WHERE outcome = 'residual'), 0) AS sorted_residual_g,
       coalesce(sum(grams) FILTER (WHERE outcome = 'unmapped'), 0) AS sorted_unmapped_g,
       coalesce(sum(recycled_g) FILTER (WHERE type = 'sold'), 0) AS recycled_content_g,
       coalesce(sum(renewable_g) FILTER (WHERE type = 'sold'), 0) AS renewable_content_g,
       coalesce(sum(fibre_g) FILTER (WHERE type = 'sold'), 0) AS fibre_g,
       sum(unweighed_qty)::bigint AS unweighed_qty
FROM flows
GROUP BY 1, 2
HAVING sum(qty) > 0
