-- Material flows (docs/materials.md). They read the material rollups (migration 0014),
-- never the raw events. Each `*_window` query gives the counts of a window per bucket,
-- GTIN, declaration, type and stream; `material_flows` weighs them.

-- name: material_window_daily
-- Whole local days of the rollup zone (the caller checks that %(tz)s is that zone).
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, c.day::timestamp) AT TIME ZONE %(tz)s
       END AS bucket_start,
       c.gtin, c.declared_from, c.type, c.stream, sum(c.qty) AS qty,
       sum(c.measured_g) AS measured_g, sum(c.measured_qty) AS measured_qty
FROM material_counts_daily c
WHERE c.day >= %(from_day)s AND c.day < %(to_day)s
GROUP BY 1, 2, 3, 4, 5

-- name: material_window_15m
-- Any window on quarter hours, in any zone.
SELECT CASE WHEN %(unit)s = 'total' THEN %(from)s::timestamptz
            ELSE date_trunc(%(unit)s, c.bucket AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s
       END AS bucket_start,
       c.gtin, c.declared_from, c.type, c.stream, sum(c.qty) AS qty,
       sum(c.measured_g) AS measured_g, sum(c.measured_qty) AS measured_qty
FROM material_counts_15m c
WHERE c.bucket >= %(from)s AND c.bucket < %(to)s
GROUP BY 1, 2, 3, 4, 5

-- name: material_flows
-- Grams per bucket and material. An event's grams are its measured weight, else qty ×
-- the nominal weight of its declaration; without either its qty is unweighed. The
-- declaration is the one its quarter hour was filed under; a stream's outcome is read
-- now. The window's counts come from one of the queries above.
WITH counts AS (
{window}
), weighed AS (
    SELECT c.bucket_start, d.material, c.type,
           CASE WHEN c.type <> 'sorted' THEN NULL ELSE coalesce(s.outcome, 'unmapped') END
               AS outcome,
           c.measured_g::numeric + (c.qty - c.measured_qty) * coalesce(d.weight_g, 0) AS grams,
           CASE WHEN d.weight_g IS NULL THEN c.qty - c.measured_qty ELSE 0 END AS unweighed,
           d.recycled_content_pct, d.renewable_content_pct, d.fibre_based
    FROM counts c
    LEFT JOIN material_declarations d
           ON d.gtin = c.gtin AND d.declared_from = c.declared_from
    LEFT JOIN products p ON p.gtin = c.gtin
    LEFT JOIN sorting_streams s ON s.stream = c.stream
    WHERE (%(brand)s::text IS NULL OR p.brand = %(brand)s)
      AND (%(packaging_type)s::text IS NULL OR p.packaging_type_id = %(packaging_type)s)
      AND (NOT %(placed_only)s OR c.type = 'sold')
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
       coalesce(sum(grams * recycled_content_pct / 100) FILTER (WHERE type = 'sold'), 0)
           AS recycled_content_g,
       coalesce(sum(grams * renewable_content_pct / 100) FILTER (WHERE type = 'sold'), 0)
           AS renewable_content_g,
       coalesce(sum(grams) FILTER (WHERE type = 'sold' AND fibre_based), 0) AS fibre_g,
       sum(unweighed)::bigint AS unweighed_qty
FROM weighed
GROUP BY 1, 2
ORDER BY 1, material COLLATE "C" NULLS LAST
