-- The public Digital Link resolver's reads: what anyone holding the package may see.
-- Never a brand-internal field, a site or a device.

-- name: product
-- A registered product and its packaging.
SELECT p.name AS product, t.id AS packaging_type, t.name AS packaging,
       t.material, t.reusable, t.target_trips, t.deposit
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE p.item_class = %(item_class)s

-- name: item
-- A known item (commissioned, or seen in any event) of a registered product, with its
-- trips so far (reusable packaging only: single-use packaging makes no trips).
SELECT p.name AS product, t.id AS packaging_type, t.name AS packaging,
       t.material, t.reusable, t.target_trips, t.deposit,
       CASE WHEN t.reusable THEN
           coalesce((SELECT l.trips FROM item_loops l
                     WHERE l.item_class = p.item_class AND l.serial = %(serial)s), 0)
       END AS trips
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE p.item_class = %(item_class)s
  AND (EXISTS (SELECT 1 FROM items i WHERE i.item_class = p.item_class AND i.serial = %(serial)s)
       OR EXISTS (SELECT 1 FROM events e WHERE e.item_class = p.item_class AND e.serial = %(serial)s))
