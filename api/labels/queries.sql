-- Commissioning items for labels (api/labels/commissioning.py).

-- name: product_of_brand
-- The product labels are printed for; %(brand)s holds a brand key to its own products.
SELECT p.name, t.deposit
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE p.gtin = %(gtin)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)

-- name: insert_batch
INSERT INTO label_batches (id, gtin, count, format, created_by)
VALUES (%(id)s, %(gtin)s, %(count)s, %(format)s, %(by)s)

-- name: create_new_serials
-- Per-connection scratch table for drawn serials; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS new_serials (serial text) ON COMMIT DELETE ROWS

-- name: copy_new_serials
COPY new_serials (serial) FROM STDIN

-- name: insert_items
-- The primary key (gtin, serial) keeps a serial from ever being given twice for a GTIN.
INSERT INTO items (gtin, serial, batch_id)
SELECT DISTINCT %(gtin)s, serial, %(batch_id)s::uuid FROM new_serials
ON CONFLICT (gtin, serial) DO NOTHING
RETURNING serial

-- name: clear_new_serials
DELETE FROM new_serials

-- name: copy_event_ids
COPY event_ids (event_id, ts) FROM STDIN

-- name: copy_commissioned
COPY events (event_id, ts, received_at, gtin, serial, attrs, type, qty) FROM STDIN

-- name: commissioned_item_loops
-- New items join the reuse aggregates with no trips yet, as migration 0010's backfill
-- counts every serialised item with an event: a crate still in the store is part of the
-- pool. An item devices reported before it was commissioned keeps its later latest event.
INSERT INTO item_loops AS l (gtin, serial, last_type, last_ts, last_event_id)
SELECT %(gtin)s, s.serial, 'commissioned', %(ts)s, s.event_id
FROM unnest(%(serials)s::text[], %(event_ids)s::uuid[]) AS s (serial, event_id)
ON CONFLICT (gtin, serial) DO UPDATE
SET last_type = EXCLUDED.last_type, last_ts = EXCLUDED.last_ts,
    last_event_id = EXCLUDED.last_event_id
WHERE (l.last_ts, l.last_event_id) < (EXCLUDED.last_ts, EXCLUDED.last_event_id)

-- name: batch
SELECT b.gtin, b.format, p.name, t.deposit
FROM label_batches b
JOIN products p ON p.gtin = b.gtin
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE b.id = %(id)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)

-- name: batch_serials
SELECT serial FROM items WHERE batch_id = %(id)s ORDER BY serial

-- name: item_product
SELECT p.name, t.deposit
FROM items i
JOIN products p ON p.gtin = i.gtin
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE i.gtin = %(gtin)s AND i.serial = %(serial)s
  AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
