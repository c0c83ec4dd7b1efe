-- Queries of the web pages, loaded once at start by schemas.named_queries.

-- name: items_with_serial
-- The GTINs under which a serial was commissioned; %(brand)s limits it to a brand's products.
SELECT i.gtin
FROM items i
JOIN products p ON p.gtin = i.gtin
WHERE i.serial = %(serial)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
ORDER BY i.gtin
LIMIT 20

-- name: brand_products
SELECT p.gtin, p.name, p.packaging_type_id AS packaging_type, t.name AS packaging_name,
       t.material, t.reusable, t.deposit
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE p.brand = %(brand)s
ORDER BY p.name, p.gtin
