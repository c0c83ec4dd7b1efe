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

-- name: rejects_by_reason
-- Rejects by reason and packaging type over whole days of the rollup zone (migration 0011):
-- the whole months of the window from the month table, its other days from the day
-- table; %(brand)s limits it to a brand's products.
WITH counts AS (
    SELECT gtin, reason, qty FROM reject_counts_monthly
    WHERE month >= %(first_month)s AND month < %(end_month)s
    UNION ALL
    SELECT gtin, reason, qty FROM reject_counts_daily
    WHERE day >= %(from_day)s AND day < least(%(first_month)s, %(to_day)s)
    UNION ALL
    SELECT gtin, reason, qty FROM reject_counts_daily
    WHERE day >= greatest(%(end_month)s, %(from_day)s) AND day < %(to_day)s
), by_gtin AS (
    SELECT gtin, reason, sum(qty) AS qty FROM counts GROUP BY 1, 2
)
SELECT r.reason, p.packaging_type_id AS packaging_type, sum(r.qty)::bigint AS rejected
FROM by_gtin r
LEFT JOIN products p ON p.gtin = r.gtin
WHERE (%(brand)s::text IS NULL OR p.brand = %(brand)s)
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2 NULLS LAST
