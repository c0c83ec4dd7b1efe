-- The ingest's accounting identity, per worker: received = stored + duplicates +
-- dead_lettered, where an item is one event of a readable payload, or one whole payload
-- that could not be read or came from an unknown device. Counted in the same transaction
-- as the outcomes; earlier totals had every item received, so they start balanced.
ALTER TABLE ingest_counters ADD COLUMN received bigint NOT NULL DEFAULT 0;
UPDATE ingest_counters SET received = stored + duplicates + dead_lettered;
