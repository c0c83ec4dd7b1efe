-- Queries of the web pages, loaded once at start by schemas.named_queries.

-- name: items_with_serial
-- The GTINs under which a serial was commissioned; %(brand)s limits it to a brand's products.
SELECT i.gtin
FROM items i
JOIN products p ON p.gtin = i.gtin
WHERE i.serial = %(serial)s AND (%(brand)s::text IS NULL OR p.brand = %(brand)s)
ORDER BY i.gtin
LIMIT 20
