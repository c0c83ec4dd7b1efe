-- Commissioning items for labels (api/labels/commissioning.py).

-- name: product_of_brand
-- The product labels are printed for; %(brand)s holds a brand key to its own products.
SELECT p.name, t.deposit
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE p.item_class = %(item_class)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)

-- name: insert_batch
INSERT INTO label_batches (id, item_class, count, format, created_by)
VALUES (%(id)s, %(item_class)s, %(count)s, %(format)s, %(by)s)

-- name: create_new_serials
-- Per-connection scratch table for drawn serials; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS new_serials (serial text) ON COMMIT DELETE ROWS

-- name: copy_new_serials
COPY new_serials (serial) FROM STDIN

-- name: insert_items
-- The primary key (item_class, serial) keeps a serial from ever being given twice for an
-- item class.
INSERT INTO items (item_class, serial, batch_id)
SELECT DISTINCT %(item_class)s, serial, %(batch_id)s::uuid FROM new_serials
ON CONFLICT (item_class, serial) DO NOTHING
RETURNING serial

-- name: clear_new_serials
DELETE FROM new_serials

-- name: copy_event_ids
COPY event_ids (event_id, ts) FROM STDIN

-- name: copy_commissioned
COPY events (event_id, ts, received_at, item_class, serial, attrs, type, qty) FROM STDIN

-- name: commissioned_item_loops
-- New items join the reuse aggregates with no trips yet, as migration 0010's backfill
-- counts every serialised item with an event: a crate still in the store is part of the
-- pool. An item devices reported before it was commissioned keeps its later latest event.
INSERT INTO item_loops AS l (item_class, serial, last_type, last_ts, last_event_id)
SELECT %(item_class)s, s.serial, 'commissioned', %(ts)s, s.event_id
FROM unnest(%(serials)s::text[], %(event_ids)s::uuid[]) AS s (serial, event_id)
ON CONFLICT (item_class, serial) DO UPDATE
SET last_type = EXCLUDED.last_type, last_ts = EXCLUDED.last_ts,
    last_event_id = EXCLUDED.last_event_id
WHERE (l.last_ts, l.last_event_id) < (EXCLUDED.last_ts, EXCLUDED.last_event_id)

-- name: batch
SELECT b.item_class, b.format, p.name, t.deposit
FROM label_batches b
JOIN products p ON p.item_class = b.item_class
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE b.id = %(id)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)

-- name: batch_serials
SELECT serial FROM items WHERE batch_id = %(id)s ORDER BY serial

-- name: item_product
SELECT p.name, t.deposit
FROM items i
JOIN products p ON p.item_class = i.item_class
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE i.item_class = %(item_class)s AND i.serial = %(serial)s
  AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
