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
