-- Label batches: a brand owner commissions N serialised items of one GTIN at once and
-- prints their QR labels; the batch can be downloaded again later.
CREATE TABLE label_batches (
    id         uuid PRIMARY KEY,
    gtin       text NOT NULL REFERENCES products (gtin),
    count      integer NOT NULL CHECK (count > 0),
    format     text NOT NULL CHECK (format IN ('pdf', 'png', 'svg', 'zip')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE items
    ADD CONSTRAINT items_batch FOREIGN KEY (batch_id) REFERENCES label_batches (id);
CREATE INDEX items_batch ON items (batch_id, serial) WHERE batch_id IS NOT NULL;

-- A `commissioned` event is written for each new item by the label service, which is no
-- device at any site: events not sent by a device have neither. Rollups and device
-- counts are kept for device events only.
ALTER TABLE events ALTER COLUMN device_id DROP NOT NULL;
ALTER TABLE events ALTER COLUMN site_id DROP NOT NULL;
ALTER TABLE events
    ADD CONSTRAINT events_device_or_label
    CHECK ((device_id IS NOT NULL AND site_id IS NOT NULL) OR type = 'commissioned')
    NOT VALID;  -- every stored event has both: no need to scan them all to prove it
