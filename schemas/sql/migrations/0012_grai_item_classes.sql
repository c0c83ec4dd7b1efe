-- Returnable assets keyed by GRAI (GS1 AI 8003) beside items keyed by GTIN + serial.
-- The `gtin` columns hold an item's class: a GTIN-14 as before, or "8003" followed by the
-- GRAI's 14-digit asset type (schemas/grai.py). GTINs and GRAI asset types are numbered
-- independently, so the same 14 digits can name both; 18 digits never collide with a
-- GTIN-14. Every table keyed by (gtin, serial) or by gtin (events, rollups, item loops,
-- label batches) keeps working unchanged, and a GRAI asset type is registered as a row of
-- `products` (`PUT /v1/asset-types/{grai}`) with its packaging type and brand.
-- Existing rows already satisfy the wider checks: no data moves.

ALTER TABLE products DROP CONSTRAINT products_gtin_check;
ALTER TABLE products ADD CONSTRAINT products_gtin_check
    CHECK (gtin ~ '^([0-9]{14}|8003[0-9]{14})$') NOT VALID;
ALTER TABLE products VALIDATE CONSTRAINT products_gtin_check;

ALTER TABLE items DROP CONSTRAINT items_gtin_check;
ALTER TABLE items ADD CONSTRAINT items_gtin_check
    CHECK (gtin ~ '^([0-9]{14}|8003[0-9]{14})$') NOT VALID;
ALTER TABLE items VALIDATE CONSTRAINT items_gtin_check;
