-- Registry reads of the API beside schemas/sql/queries/registry.sql.

-- name: brand_products
SELECT p.item_class, p.name, p.packaging_type_id AS packaging_type, t.name AS packaging_name,
       t.material, t.reusable, t.deposit
FROM products p
JOIN packaging_types t ON t.id = p.packaging_type_id
WHERE p.brand = %(brand)s
ORDER BY p.name, p.item_class
