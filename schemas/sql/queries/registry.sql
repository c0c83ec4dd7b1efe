-- Registry reads and upserts shared by the API and the command line (PUT: idempotent).
-- An upsert returns whether it created the row (xmax = 0 only on a fresh insert).

-- name: upsert_packaging_type
INSERT INTO packaging_types AS p (id, name, material, reusable, target_trips, deposit, weight_g,
                                  recycled_content_pct, renewable_content_pct, fibre_based)
VALUES (%(id)s, %(name)s, %(material)s, %(reusable)s, %(target_trips)s, %(deposit)s, %(weight_g)s,
        %(recycled_content_pct)s, %(renewable_content_pct)s, %(fibre_based)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, material = EXCLUDED.material, reusable = EXCLUDED.reusable,
    target_trips = EXCLUDED.target_trips, deposit = EXCLUDED.deposit,
    weight_g = EXCLUDED.weight_g, recycled_content_pct = EXCLUDED.recycled_content_pct,
    renewable_content_pct = EXCLUDED.renewable_content_pct, fibre_based = EXCLUDED.fibre_based,
    updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: products_of_type
-- The products (and asset types) whose material figures a packaging type gives.
SELECT item_class FROM products WHERE packaging_type_id = %(id)s ORDER BY item_class

-- name: product_key
-- What a product's counts are filed under, locked until the upsert that follows.
SELECT packaging_type_id, brand FROM products WHERE item_class = %(item_class)s FOR UPDATE

-- name: upsert_product
INSERT INTO products AS p (item_class, packaging_type_id, brand, name, recycled_content_pct,
                           renewable_content_pct, fibre_based)
VALUES (%(item_class)s, %(packaging_type)s, %(brand)s, %(name)s, %(recycled_content_pct)s,
        %(renewable_content_pct)s, %(fibre_based)s)
ON CONFLICT (item_class) DO UPDATE
SET packaging_type_id = EXCLUDED.packaging_type_id, brand = EXCLUDED.brand,
    name = EXCLUDED.name, recycled_content_pct = EXCLUDED.recycled_content_pct,
    renewable_content_pct = EXCLUDED.renewable_content_pct, fibre_based = EXCLUDED.fibre_based,
    updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: upsert_site
INSERT INTO sites AS s (id, name, kind, lat, lon)
VALUES (%(id)s, %(name)s, %(kind)s, %(lat)s, %(lon)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, kind = EXCLUDED.kind, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
    updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: upsert_device
INSERT INTO devices AS d (id, site_id, kind)
VALUES (%(id)s, %(site)s, %(kind)s)
ON CONFLICT (id) DO UPDATE
SET site_id = EXCLUDED.site_id, kind = EXCLUDED.kind, updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: insert_device
INSERT INTO devices (id, site_id, kind) VALUES (%(id)s, %(site)s, %(kind)s)

-- name: get_packaging_type
SELECT id, name, material, reusable, target_trips, deposit, weight_g, recycled_content_pct,
       renewable_content_pct, fibre_based
FROM packaging_types WHERE id = %(id)s

-- name: list_packaging_types
SELECT id, name, material, reusable, target_trips, deposit, weight_g, recycled_content_pct,
       renewable_content_pct, fibre_based
FROM packaging_types ORDER BY id LIMIT %(limit)s

-- name: get_product
-- %(brand)s NULL means any brand (operators); a brand key passes its own. A product's
-- item class is its GTIN-14 (the Product record's `gtin`).
SELECT item_class AS gtin, packaging_type_id AS packaging_type, brand, name,
       recycled_content_pct, renewable_content_pct, fibre_based
FROM products WHERE item_class = %(item_class)s AND (%(brand)s::text IS NULL OR brand = %(brand)s)

-- name: product_brand
SELECT brand FROM products WHERE item_class = %(item_class)s

-- name: list_products
-- GTINs only: GRAI asset types share the table under 18-digit keys (0012_grai_item_classes).
SELECT item_class AS gtin, packaging_type_id AS packaging_type, brand, name,
       recycled_content_pct, renewable_content_pct, fibre_based
FROM products
WHERE (%(brand)s::text IS NULL OR brand = %(brand)s)
  AND (%(packaging_type)s::text IS NULL OR packaging_type_id = %(packaging_type)s)
  AND item_class > %(after)s AND length(item_class) = 14
ORDER BY item_class LIMIT %(limit)s

-- name: get_asset_type
-- A GRAI asset type, stored as the product of item class '8003' || grai.
SELECT substr(item_class, 5) AS grai, packaging_type_id AS packaging_type, brand, name,
       recycled_content_pct, renewable_content_pct, fibre_based
FROM products
WHERE item_class = '8003' || %(grai)s AND (%(brand)s::text IS NULL OR brand = %(brand)s)

-- name: list_asset_types
SELECT substr(item_class, 5) AS grai, packaging_type_id AS packaging_type, brand, name,
       recycled_content_pct, renewable_content_pct, fibre_based
FROM products
WHERE (%(brand)s::text IS NULL OR brand = %(brand)s)
  AND (%(packaging_type)s::text IS NULL OR packaging_type_id = %(packaging_type)s)
  AND item_class > '8003' || %(after)s AND item_class < '8004' AND length(item_class) = 18
ORDER BY item_class LIMIT %(limit)s

-- name: get_site
SELECT id, name, kind, lat, lon FROM sites WHERE id = %(id)s

-- name: get_device
SELECT id, site_id AS site, kind FROM devices WHERE id = %(id)s

-- name: list_devices
-- With liveness from the ingest worker: events today (UTC) and seq numbers never received.
SELECT d.id, d.site_id AS site, d.kind, s.last_seen, s.online,
       coalesce(c.events, 0) AS events_today,
       coalesce((SELECT sum(g.gap_to - g.gap_from + 1) FROM seq_gaps g
                 WHERE g.device_id = d.id), 0) AS seq_gaps
FROM devices d
LEFT JOIN device_state s ON s.device_id = d.id
LEFT JOIN device_counts_daily c
       ON c.device_id = d.id AND c.day = (now() AT TIME ZONE 'UTC')::date
WHERE (%(site_id)s::text IS NULL OR d.site_id = %(site_id)s) AND d.id > %(after)s
ORDER BY d.id LIMIT %(limit)s
