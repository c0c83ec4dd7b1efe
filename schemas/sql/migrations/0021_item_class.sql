-- One name for the item key (issue 21.2): the columns called `gtin` hold an item class, a
-- GTIN-14 or "8003" followed by a GRAI asset type (0012_grai_item_classes), so they are
-- called `item_class`. The wire format keeps its fields (`gtin`, `grai`, `code`):
-- schemas/events.py reads `gtin` into Event.item_class, and schemas.grai.key_fields turns
-- an item class back into the `gtin` and `grai` a record shows.
--
-- Renames only: no row is rewritten, and indexes, keys and the view follow their columns.
-- The previous release's workers and API name the old columns, so they stop before this
-- runs (docs/operations.md, Upgrades). On TimescaleDB, renaming a column of the `events`
-- hypertable renames it in its chunks and compressed chunks too.

ALTER TABLE products RENAME COLUMN gtin TO item_class;
ALTER TABLE products RENAME CONSTRAINT products_gtin_check TO products_item_class_check;
ALTER TABLE label_batches RENAME COLUMN gtin TO item_class;
ALTER TABLE label_batches RENAME CONSTRAINT label_batches_gtin_fkey TO label_batches_item_class_fkey;
ALTER TABLE items RENAME COLUMN gtin TO item_class;
ALTER TABLE items RENAME CONSTRAINT items_gtin_check TO items_item_class_check;
ALTER TABLE events RENAME COLUMN gtin TO item_class;
ALTER TABLE event_counts_15m RENAME COLUMN gtin TO item_class;
ALTER INDEX event_counts_15m_gtin RENAME TO event_counts_15m_item_class;
ALTER TABLE reject_counts_daily RENAME COLUMN gtin TO item_class;
ALTER TABLE reject_counts_monthly RENAME COLUMN gtin TO item_class;
ALTER TABLE item_loops RENAME COLUMN gtin TO item_class;
ALTER TABLE item_trips RENAME COLUMN gtin TO item_class;
ALTER TABLE duplicate_returns RENAME COLUMN gtin TO item_class;
ALTER TABLE material_declarations RENAME COLUMN gtin TO item_class;
ALTER TABLE material_counts_15m RENAME COLUMN gtin TO item_class;
ALTER INDEX material_counts_15m_gtin RENAME TO material_counts_15m_item_class;
-- A view's columns keep the names they were created with: its `gtin` follows by hand.
ALTER VIEW material_grams_15m RENAME COLUMN gtin TO item_class;

-- Functions whose arguments were named for GTINs: functions.sql, applied after this in
-- the same transaction, creates them again with arguments named for item classes (a
-- function's argument names cannot be replaced in place). Callers pass them by position.
DROP FUNCTION move_return_counts(text, text, text, text, text);
DROP FUNCTION declaration_at(text, timestamptz);
DROP FUNCTION refile_material_counts(text, timestamptz);
DROP FUNCTION move_material_grams(text, text, text, text, text);
DROP FUNCTION file_material_grams(text, timestamptz, integer, text, text);
DROP FUNCTION declare_materials(text[], timestamptz);
