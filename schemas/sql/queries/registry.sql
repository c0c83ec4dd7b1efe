-- Registry upserts shared by the API and the command line (PUT semantics: idempotent).

-- name: upsert_packaging_type
INSERT INTO packaging_types AS p (id, name, material, reusable, target_trips, deposit, weight_g)
VALUES (%(id)s, %(name)s, %(material)s, %(reusable)s, %(target_trips)s, %(deposit)s, %(weight_g)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, material = EXCLUDED.material, reusable = EXCLUDED.reusable,
    target_trips = EXCLUDED.target_trips, deposit = EXCLUDED.deposit,
    weight_g = EXCLUDED.weight_g, updated_at = now()

-- name: upsert_product
INSERT INTO products AS p (gtin, packaging_type_id, brand, name)
VALUES (%(gtin)s, %(packaging_type)s, %(brand)s, %(name)s)
ON CONFLICT (gtin) DO UPDATE
SET packaging_type_id = EXCLUDED.packaging_type_id, brand = EXCLUDED.brand,
    name = EXCLUDED.name, updated_at = now()

-- name: upsert_site
INSERT INTO sites AS s (id, name, kind, lat, lon)
VALUES (%(id)s, %(name)s, %(kind)s, %(lat)s, %(lon)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, kind = EXCLUDED.kind, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
    updated_at = now()

-- name: upsert_device
INSERT INTO devices AS d (id, site_id, kind)
VALUES (%(id)s, %(site)s, %(kind)s)
ON CONFLICT (id) DO UPDATE
SET site_id = EXCLUDED.site_id, kind = EXCLUDED.kind, updated_at = now()

-- name: insert_device
INSERT INTO devices (id, site_id, kind) VALUES (%(id)s, %(site)s, %(kind)s)
