-- Sorting streams and circularity targets (registry data, PUT: idempotent).

-- name: upsert_sorting_stream
INSERT INTO sorting_streams AS s (stream, outcome, material, name)
VALUES (%(stream)s, %(outcome)s, %(material)s, %(name)s)
ON CONFLICT (stream) DO UPDATE
SET outcome = EXCLUDED.outcome, material = EXCLUDED.material, name = EXCLUDED.name,
    updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: list_sorting_streams
SELECT stream, outcome, material, name FROM sorting_streams ORDER BY stream

-- name: get_sorting_stream
SELECT stream, outcome, material, name FROM sorting_streams WHERE stream = %(stream)s

-- name: upsert_target
INSERT INTO circularity_targets AS t
    (id, name, metric, materials, value, year, baseline_value, baseline_year, source)
VALUES (%(id)s, %(name)s, %(metric)s, %(materials)s, %(value)s, %(year)s, %(baseline_value)s,
        %(baseline_year)s, %(source)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, metric = EXCLUDED.metric, materials = EXCLUDED.materials,
    value = EXCLUDED.value, year = EXCLUDED.year, baseline_value = EXCLUDED.baseline_value,
    baseline_year = EXCLUDED.baseline_year, source = EXCLUDED.source, updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: list_targets
SELECT id, name, metric, materials, value, year, baseline_value, baseline_year, source
FROM circularity_targets ORDER BY year, id

-- name: get_target
SELECT id, name, metric, materials, value, year, baseline_value, baseline_year, source
FROM circularity_targets WHERE id = %(id)s

-- name: delete_target
DELETE FROM circularity_targets WHERE id = %(id)s RETURNING id

-- name: list_declarations
-- A product's material declarations, newest first (-infinity: its first, for all time).
SELECT CASE WHEN isfinite(d.declared_from) THEN d.declared_from END AS declared_from,
       d.material, d.weight_g, d.recycled_content_pct,
       d.renewable_content_pct, d.fibre_based, d.saved_at
FROM material_declarations d
JOIN products p ON p.item_class = d.item_class
WHERE d.item_class = %(item_class)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
ORDER BY d.declared_from DESC
LIMIT 1000
