-- name: item
-- An item's product and trips; %(brand)s limits a brand key to its own products.
SELECT p.item_class, %(serial)s AS serial, p.name AS product, p.brand,
       t.id AS packaging_type, t.material, t.reusable, t.target_trips, t.deposit,
       coalesce((SELECT l.trips FROM item_loops l
                 WHERE l.item_class = p.item_class AND l.serial = %(serial)s), 0) AS trips,
       i.commissioned_at
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
LEFT JOIN items i ON i.item_class = p.item_class AND i.serial = %(serial)s
WHERE p.item_class = %(item_class)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)

-- name: item_events
SELECT event_id, ts, type, device_id, site_id, reason, stream
FROM events
WHERE item_class = %(item_class)s AND serial = %(serial)s
ORDER BY ts DESC, event_id DESC
LIMIT %(limit)s

-- name: items_with_serial
-- The item classes (GTINs or asset types) of the items with this serial: commissioned here, or known
-- from devices' events alone (item_loops holds every serialised item with an event, as
-- /v1/items finds them); %(brand)s limits it to a brand's products. Each product's keys
-- are probed, so no index on the serial alone is needed.
SELECT p.item_class
FROM products p
WHERE (%(brand)s::text IS NULL OR p.brand = %(brand)s)
  AND (EXISTS (SELECT 1 FROM items i WHERE i.item_class = p.item_class AND i.serial = %(serial)s)
       OR EXISTS (SELECT 1 FROM item_loops l WHERE l.item_class = p.item_class AND l.serial = %(serial)s))
ORDER BY p.item_class
LIMIT 20
