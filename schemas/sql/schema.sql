-- The whole looptrack schema as it is now, in one file to read: tables grouped by what
-- they are for, with their indexes, views and the rows a new database starts with. The
-- SQL functions are in functions.sql.
--
-- This file is not what builds a database: `looptrack db migrate` applies the migrations
-- (migrations/, in order, once each) and then functions.sql. tests/schemas/test_schema.py
-- checks that the two give exactly the same schema (pg_dump --schema-only) and the same
-- starting rows, from an empty database and from a database at every earlier migration.
-- A migration that changes the schema changes this file in the same commit.
--
-- Columns are listed in the order the table has them (later migrations add theirs at the
-- end), because that order is part of the schema: it is what `SELECT *` and a COPY
-- without a column list see.
--
-- TimescaleDB, when the extension is available (migration 0001; LOOPTRACK_TIMESCALEDB=off
-- keeps plain PostgreSQL): `events` is a hypertable on `ts` with one-day chunks and no
-- default indexes, compressed after 14 days (segmented by device_id, ordered by ts DESC)
-- where the build has compression. Retention is `looptrack db prune`'s (0016 removed the
-- extension's own policy). Nothing else differs.


-- ---------------------------------------------------------------------------------------
-- Bookkeeping
-- ---------------------------------------------------------------------------------------

-- One row per migration applied (schemas/migrations.py creates the table before the first).
CREATE TABLE schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);


-- ---------------------------------------------------------------------------------------
-- Registry (SPEC §4): packaging types, products, sites, devices, keys and accounts
-- ---------------------------------------------------------------------------------------

CREATE TABLE packaging_types (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    material     text NOT NULL
                 CHECK (material IN ('PET', 'HDPE', 'PP', 'glass', 'aluminium', 'steel', 'fibre', 'other')),
    reusable     boolean NOT NULL DEFAULT false,
    -- design life in trips; only meaningful for reusable packaging
    target_trips integer CHECK (target_trips > 0),
    -- minor currency units (øre)
    deposit      integer NOT NULL DEFAULT 0 CHECK (deposit >= 0),
    -- empty weight in grams, for weight-based collection targets
    weight_g     numeric(10, 2) CHECK (weight_g > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- what the packaging is made of (docs/materials.md), in percent of its weight
    recycled_content_pct  numeric(5, 2) NOT NULL DEFAULT 0
                          CHECK (recycled_content_pct BETWEEN 0 AND 100),
    renewable_content_pct numeric(5, 2) NOT NULL DEFAULT 0
                          CHECK (renewable_content_pct BETWEEN 0 AND 100),
    fibre_based           boolean NOT NULL DEFAULT false,
    CHECK (reusable OR target_trips IS NULL),
    CONSTRAINT packaging_types_content_at_most_whole
        CHECK (recycled_content_pct + renewable_content_pct <= 100)
);

-- A product is an item class: a GTIN-14, or "8003" followed by a GRAI's 14-digit asset
-- type (schemas/grai.py; registered by PUT /v1/asset-types/{grai}). The two are numbered
-- independently; 18 digits never collide with a GTIN-14. Every `item_class` column below
-- holds such an item class.
CREATE TABLE products (
    item_class        text PRIMARY KEY CHECK (item_class ~ '^([0-9]{14}|8003[0-9]{14})$'),
    packaging_type_id text NOT NULL REFERENCES packaging_types (id),
    brand             text NOT NULL CHECK (brand ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- the product's own content figures where they differ from its packaging type's
    -- (NULL: the packaging type's)
    recycled_content_pct  numeric(5, 2) CHECK (recycled_content_pct BETWEEN 0 AND 100),
    renewable_content_pct numeric(5, 2) CHECK (renewable_content_pct BETWEEN 0 AND 100),
    fibre_based           boolean
);
CREATE INDEX products_brand ON products (brand);
CREATE INDEX products_packaging_type ON products (packaging_type_id);

CREATE TABLE sites (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       text NOT NULL CHECK (kind IN ('shop', 'sorting', 'filling', 'washing', 'other')),
    lat        double precision CHECK (lat BETWEEN -90 AND 90),
    lon        double precision CHECK (lon BETWEEN -180 AND 180),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A device id is one MQTT topic level: no '/', '+' or '#'.
CREATE TABLE devices (
    id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    site_id    text NOT NULL REFERENCES sites (id),
    kind       text NOT NULL CHECK (kind IN ('rvm', 'sorter', 'filler', 'washer', 'pos', 'other')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_site ON devices (site_id);

-- API keys (SPEC §9): only a SHA-256 of each key is stored; the key is shown once.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role       text NOT NULL CHECK (role IN ('admin', 'operator', 'brand', 'device')),
    -- a brand key sees one brand's data, a device key posts as one device
    brand      text CHECK (brand ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    device_id  text REFERENCES devices (id) ON DELETE CASCADE,
    key_hash   bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    -- refused from then on, like a revoked key (NULL: never expires)
    expires_at timestamptz,
    -- written at most once per key every LAST_USED_PRECISION_S (schemas/api_keys.py)
    last_used_at timestamptz,
    CHECK ((role = 'brand') = (brand IS NOT NULL)),
    CHECK ((role = 'device') = (device_id IS NOT NULL)),
    CONSTRAINT api_keys_expires_after_creation CHECK (expires_at > created_at)
);

-- Page sessions: the login cookie holds a random session id, not the API key, and only its
-- SHA-256 is stored. A session ends at logout (its row deleted), when it expires, or when
-- its key is revoked.
CREATE TABLE page_sessions (
    id_hash    bytea PRIMARY KEY,
    key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX page_sessions_expires ON page_sessions (expires_at);
CREATE INDEX page_sessions_key ON page_sessions (key_id);

-- MQTT accounts for the broker's password and ACL files (SPEC §9): a device's username is
-- its id; the ingest worker and the API have accounts of their own. Only Mosquitto's
-- PBKDF2-SHA512 hash (`$7$…`) is kept; `looptrack broker files` writes the files from here.
CREATE TABLE broker_accounts (
    username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    role          text NOT NULL CHECK (role IN ('device', 'ingest', 'api')),
    device_id     text UNIQUE REFERENCES devices (id) ON DELETE CASCADE,
    password_hash text CHECK (password_hash LIKE '$7$%'),  -- NULL once revoked
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((role = 'device') = (device_id IS NOT NULL)),
    CHECK (role <> 'device' OR username = device_id),
    CHECK ((password_hash IS NULL) = (revoked_at IS NOT NULL))
);


-- ---------------------------------------------------------------------------------------
-- Items and labels
-- ---------------------------------------------------------------------------------------

-- Label batches: a brand owner commissions N serialised items of one item class at once
-- and prints their QR labels; the batch can be downloaded again later.
CREATE TABLE label_batches (
    id         uuid PRIMARY KEY,
    item_class text NOT NULL REFERENCES products (item_class),
    count      integer NOT NULL CHECK (count > 0),
    format     text NOT NULL CHECK (format IN ('pdf', 'png', 'svg', 'zip')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One serialised physical package, keyed by (item class, serial).
CREATE TABLE items (
    item_class      text NOT NULL CHECK (item_class ~ '^([0-9]{14}|8003[0-9]{14})$'),
    serial          text NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    batch_id        uuid CONSTRAINT items_batch REFERENCES label_batches (id),
    commissioned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_class, serial)
);
CREATE INDEX items_batch ON items (batch_id, serial) WHERE batch_id IS NOT NULL;


-- ---------------------------------------------------------------------------------------
-- Events and the ingest (SPEC §5, §6)
-- ---------------------------------------------------------------------------------------

-- The time series. No unique key here: a hypertable's unique keys must include `ts`,
-- so exactly-once is enforced by event_ids below, in the same transaction. Events not
-- sent by a device (the `commissioned` events the label service writes) have neither a
-- device nor a site.
CREATE TABLE events (
    event_id    uuid NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    device_id   text,
    site_id     text,
    type        text NOT NULL
                CHECK (type IN ('commissioned', 'filled', 'sold', 'returned', 'rejected',
                                'sorted', 'washed', 'recycled', 'retired')),
    item_class  text NOT NULL,
    serial      text,
    qty         integer NOT NULL CHECK (qty BETWEEN 1 AND 1000000),
    seq         bigint,
    reason      text,
    stream      text,
    attrs       jsonb,
    -- a sorted event's measured weight of all its qty (g); NULL: the nominal weight counts
    weight_g    double precision
);
-- NOT VALID as migration 0007 added it to a table already holding events, without
-- scanning them all: every event stored before had a device and a site. New rows are
-- checked all the same.
ALTER TABLE events
    ADD CONSTRAINT events_device_or_label
    CHECK ((device_id IS NOT NULL AND site_id IS NOT NULL) OR type = 'commissioned')
    NOT VALID;
CREATE INDEX events_ts ON events (ts DESC);
CREATE INDEX events_item ON events (item_class, serial, ts) WHERE serial IS NOT NULL;
CREATE INDEX events_device ON events (device_id, ts DESC);

-- The idempotency keys: one row per stored event, whatever its `ts`.
CREATE TABLE event_ids (
    event_id uuid PRIMARY KEY,
    ts       timestamptz NOT NULL
);

-- Messages and events refused by the rules of SPEC §5, never dropped.
CREATE TABLE dead_letters (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    topic          text NOT NULL,
    device_id      text,
    reason         text NOT NULL,
    detail         text NOT NULL,
    -- index in {"events": [...]} for a bad event of a batch, NULL for a whole message
    batch_index    integer,
    -- the raw message, or the bad event of a batch as compact JSON; of a payload over
    -- 256 KiB only its first 4 KiB (schemas/messages.py), and replay skips such a row
    payload        bytea NOT NULL,
    replayed_at    timestamptz,
    -- size and SHA-256 of the whole payload, also when `payload` holds only its head
    payload_size   integer NOT NULL
                   CONSTRAINT dead_letters_payload_size_check
                   CHECK (payload_size >= octet_length(payload)),
    payload_sha256 bytea NOT NULL CHECK (octet_length(payload_sha256) = 32)
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_pending ON dead_letters (reason) WHERE replayed_at IS NULL;

-- Written by the ingest worker: liveness from the status topic and events, seq tracking.
CREATE TABLE device_state (
    device_id  text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    last_seen  timestamptz,
    online     boolean,
    status_at  timestamptz,
    -- highest `seq` stored so far; gaps below it are in seq_gaps
    max_seq    bigint
);

CREATE TABLE seq_gaps (
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    gap_from    bigint NOT NULL,
    gap_to      bigint NOT NULL CHECK (gap_to >= gap_from),
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, gap_from)
);

-- Running totals per ingest worker, updated in each batch's transaction. The accounting
-- identity: received = stored + duplicates + dead_lettered, where an item is one event of
-- a readable payload, or one whole payload that could not be read or came from an
-- unknown device.
CREATE TABLE ingest_counters (
    worker        text PRIMARY KEY,
    stored        bigint NOT NULL DEFAULT 0,
    duplicates    bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    received      bigint NOT NULL DEFAULT 0
);


-- ---------------------------------------------------------------------------------------
-- Count rollups (SPEC §6, §7), kept by the ingest in the transaction that inserts the raw
-- events, so they always agree with them. A product's packaging type and brand are
-- resolved when its events are counted (NULL while the item class is unregistered);
-- registering or re-assigning a product moves its counts (move_return_counts,
-- move_material_grams, the products_move_trip_lengths trigger) under the lock slots of
-- schemas/rollups.py.
-- ---------------------------------------------------------------------------------------

-- The deployment's zone (LOOPTRACK_TIMEZONE) that the day-level rollups are kept in, in
-- the database so every worker and API process agrees on it. `looptrack db migrate`
-- rebuilds those rollups when the setting changes.
CREATE TABLE rollup_zone (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    zone     text NOT NULL
);

-- Σ qty and event count per 15-minute bucket (the finest granularity any time zone's day
-- boundary needs), site, item class and event type: the source the other rollups are
-- rebuilt from, and what windows not on hours or local days read.
CREATE TABLE event_counts_15m (
    bucket     timestamptz NOT NULL,
    site_id    text NOT NULL,
    item_class text NOT NULL,
    type       text NOT NULL,
    qty        bigint NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (bucket, site_id, item_class, type)
);
-- A product's counts are found by item class when it is registered or re-assigned.
CREATE INDEX event_counts_15m_item_class ON event_counts_15m (item_class);

-- Return counts (return_counts_of in functions.sql says which events count where) per UTC
-- hour, packaging type and brand. Every zone whose offset is a whole number of hours has
-- local days made of whole UTC hours, so return rates in a zone other than the rollup
-- zone read about 24 rows per day and packaging type.
CREATE TABLE return_counts_hourly (
    hour           timestamptz NOT NULL,
    packaging_type text,
    brand          text,
    sold           bigint NOT NULL,
    returned       bigint NOT NULL,
    rejected       bigint NOT NULL,
    CONSTRAINT return_counts_hourly_key UNIQUE NULLS NOT DISTINCT (hour, packaging_type, brand)
);

-- The same per local day of the rollup zone: a year of daily return rates reads one row
-- per day, packaging type and brand, however many products there are.
CREATE TABLE return_counts_daily (
    day            date NOT NULL,
    packaging_type text,
    brand          text,
    sold           bigint NOT NULL,
    returned       bigint NOT NULL,
    rejected       bigint NOT NULL,
    CONSTRAINT return_counts_daily_key UNIQUE NULLS NOT DISTINCT (day, packaging_type, brand)
);

-- The same per site, for statistics filtered by site.
CREATE TABLE site_return_counts_daily (
    site_id        text NOT NULL,
    day            date NOT NULL,
    packaging_type text,
    brand          text,
    sold           bigint NOT NULL,
    returned       bigint NOT NULL,
    rejected       bigint NOT NULL,
    CONSTRAINT site_return_counts_daily_key
        UNIQUE NULLS NOT DISTINCT (site_id, day, packaging_type, brand)
);

-- Rejects per local day (the rollup zone), item class and reason: the operators' "rejects
-- by reason" without reading raw events. Keyed by item class, so registering a product
-- moves nothing; a new rollup zone rebuilds them from the raw rejected events.
CREATE TABLE reject_counts_daily (
    day        date NOT NULL,
    item_class text NOT NULL,
    reason     text NOT NULL,
    qty        bigint NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (day, item_class, reason)
);

-- The same by local month (`month` is its first day): a year reads 12 rows per item class
-- and reason, the days only at a window's ragged ends.
CREATE TABLE reject_counts_monthly (
    month      date NOT NULL,
    item_class text NOT NULL,
    reason     text NOT NULL,
    qty        bigint NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (month, item_class, reason)
);

-- Per device and UTC day, for "events today" on the device list.
CREATE TABLE device_counts_daily (
    day       date NOT NULL,
    device_id text NOT NULL,
    events    bigint NOT NULL,
    PRIMARY KEY (device_id, day)
);


-- ---------------------------------------------------------------------------------------
-- Reuse (SPEC §7: trips, trip_days, lost, duplicate returns)
-- ---------------------------------------------------------------------------------------

-- The reuse aggregates, kept by the ingest in the transaction of the raw insert. What a
-- trip, its start and a duplicate return are is defined once, by the fold that keeps them
-- (ItemState.fold in ingest/item_loops.py), and nowhere in SQL.

-- One serialised item: what its events so far add up to.
CREATE TABLE item_loops (
    item_class    text NOT NULL,
    serial        text NOT NULL,
    trips         integer NOT NULL DEFAULT 0,
    in_loop       boolean NOT NULL DEFAULT false, -- ever sold or filled
    last_type     text,        -- latest event of any type (lost: SPEC §7)
    last_ts       timestamptz,
    last_event_id uuid,
    loop_type     text,        -- latest `sold`, `filled` or `returned`
    loop_ts       timestamptz,
    loop_event_id uuid,
    open_sold     timestamptz, -- first `sold` since the last trip ended
    open_filled   timestamptz, -- first `filled` since the last trip ended
    PRIMARY KEY (item_class, serial)
);

-- One trip, keyed by the `returned` that ended it; started_at is NULL for a trip with no
-- `sold` or `filled` seen (an item first scanned at its return).
CREATE TABLE item_trips (
    end_event_id uuid PRIMARY KEY,
    item_class   text NOT NULL,
    serial       text NOT NULL,
    started_at   timestamptz,
    ended_at     timestamptz NOT NULL,
    -- SPEC §7 trip_days, as a float: the mean and median read it without numeric math.
    days         double precision
                 GENERATED ALWAYS AS (extract(epoch FROM ended_at - started_at) / 86400) STORED
);
CREATE INDEX item_trips_item ON item_trips (item_class, serial);
-- The trips of one minute of length of an item class, in order of length (the median's
-- last step, below).
CREATE INDEX item_trips_length ON item_trips (item_class, (ended_at - started_at))
WHERE started_at IS NOT NULL;

-- A `returned` that followed another `returned` of its item: possible cloned label.
CREATE TABLE duplicate_returns (
    event_id    uuid PRIMARY KEY,
    item_class  text NOT NULL,
    serial      text NOT NULL,
    ts          timestamptz NOT NULL,
    previous_ts timestamptz NOT NULL,
    device_id   text NOT NULL,
    site_id     text NOT NULL
);
CREATE INDEX duplicate_returns_item ON duplicate_returns (item_class, serial);
CREATE INDEX duplicate_returns_ts ON duplicate_returns (ts);

-- Trips with a start (item_trips.days not NULL) per packaging type and brand, by whole
-- days, hours and minutes of length, with the sum of their lengths, so /v1/stats/reuse
-- reads the mean (a sum over a count, exact) and median trip days off counts: the
-- median's rank is looked for among the days, then the hours of that day, then the
-- minutes of that hour, and only the trips of that minute are read from item_trips.
-- Kept with item_trips by the ingest, under the products' packaging type and brand as
-- they are then; trips of unregistered item classes count once they are registered.
CREATE TABLE trip_length_counts (
    unit_s         integer NOT NULL CHECK (unit_s IN (86400, 3600, 60)), -- a day, hour, minute
    packaging_type text NOT NULL,
    brand          text NOT NULL,
    bucket         integer NOT NULL, -- whole units of length: div(trip_seconds, unit_s)
    trips          bigint NOT NULL,
    length_s       numeric NOT NULL, -- Σ trip_seconds
    PRIMARY KEY (unit_s, packaging_type, bucket, brand)
);

-- A product registered, re-assigned or removed carries its item class's trips with it.
CREATE CONSTRAINT TRIGGER products_move_trip_lengths
AFTER INSERT OR UPDATE OR DELETE ON products
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION move_trip_lengths();


-- ---------------------------------------------------------------------------------------
-- Material flows and circularity targets (docs/materials.md)
-- ---------------------------------------------------------------------------------------

-- What each product declared, and from when: the figures of an event are those of the
-- declaration in force at its quarter hour. A product's first declaration starts at
-- -infinity, so it also covers events from before the product was registered.
CREATE TABLE material_declarations (
    item_class            text NOT NULL,
    declared_from         timestamptz NOT NULL,
    material              text NOT NULL,
    weight_g              numeric(10, 2),
    recycled_content_pct  numeric(5, 2) NOT NULL,
    renewable_content_pct numeric(5, 2) NOT NULL,
    fibre_based           boolean NOT NULL,
    saved_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_class, declared_from),
    CONSTRAINT material_declarations_content_at_most_whole
        CHECK (recycled_content_pct + renewable_content_pct <= 100)
);

-- Where a sorting site's stream goes (registry data, read at query time, so correcting a
-- stream corrects history).
CREATE TABLE sorting_streams (
    stream     text PRIMARY KEY,
    outcome    text NOT NULL
               CHECK (outcome IN ('reuse', 'material_recycling', 'energy_recovery', 'residual')),
    material   text,
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sorting_streams_material_only_for_recycling
        CHECK (material IS NULL OR outcome = 'material_recycling')
);

-- The targets the figures are measured against (registry data).
CREATE TABLE circularity_targets (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    metric         text NOT NULL CHECK (metric IN (
                       'collection_rate', 'material_recycling_rate', 'reuse_share',
                       'recycled_content_share', 'renewable_content_share',
                       'recycled_or_renewable_share', 'fibre_share')),
    materials      text[],
    value          numeric(6, 5) NOT NULL CHECK (value BETWEEN 0 AND 1),
    year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    baseline_value numeric(6, 5) CHECK (baseline_value BETWEEN 0 AND 1),
    baseline_year  integer CHECK (baseline_year BETWEEN 1990 AND 2100),
    source         text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Σ qty and measured grams of sold, returned and sorted events per quarter hour, item
-- class, declaration in force (NULL while the item class is unregistered) and stream:
-- the source of the grams rollups, re-filed when a declaration changes
-- (refile_material_counts).
CREATE TABLE material_counts_15m (
    bucket        timestamptz NOT NULL,
    item_class    text NOT NULL,
    declared_from timestamptz,
    type          text NOT NULL CHECK (type IN ('sold', 'returned', 'sorted')),
    stream        text,
    qty           bigint NOT NULL,
    measured_g    double precision NOT NULL,  -- Σ weight_g of the events that carried one
    measured_qty  bigint NOT NULL,            -- Σ qty of those events
    CONSTRAINT material_counts_15m_key
        UNIQUE NULLS NOT DISTINCT (bucket, item_class, declared_from, type, stream)
);
CREATE INDEX material_counts_15m_item_class ON material_counts_15m (item_class, bucket);

-- Each quarter hour's counts weighed (material_grams in functions.sql): under the
-- declaration it was filed under, with its product's packaging type and brand as they
-- are now (NULL for unregistered item classes).
CREATE VIEW material_grams_15m AS
SELECT c.bucket, c.item_class, p.packaging_type_id AS packaging_type, p.brand, d.material, c.type,
       c.stream, c.qty, w.grams,
       coalesce(w.grams * d.recycled_content_pct / 100, 0) AS recycled_g,
       coalesce(w.grams * d.renewable_content_pct / 100, 0) AS renewable_g,
       CASE WHEN d.fibre_based THEN w.grams ELSE 0 END AS fibre_g,
       material_unweighed_qty(c.qty, c.measured_qty, d.weight_g) AS unweighed_qty
FROM material_counts_15m c
LEFT JOIN material_declarations d ON d.item_class = c.item_class AND d.declared_from = c.declared_from
LEFT JOIN products p ON p.item_class = c.item_class
CROSS JOIN LATERAL (
    SELECT material_grams(c.qty, c.measured_g, c.measured_qty, d.weight_g) AS grams
) w;

-- Σ of material_grams_15m per local day of the rollup zone and per UTC hour, by packaging
-- type, brand, material, type and stream: material flows of a year read these instead of
-- weighing every item class's counts at query time. The outcome of a stream is still read
-- at query time. qty is the Σ qty of the counts: a row whose qty is 0 holds nothing and
-- is deleted.
CREATE TABLE material_grams_daily (
    day            date NOT NULL,
    packaging_type text,
    brand          text,
    material       text,
    type           text NOT NULL,
    stream         text,
    qty            bigint NOT NULL,
    grams          numeric NOT NULL,
    recycled_g     numeric NOT NULL,
    renewable_g    numeric NOT NULL,
    fibre_g        numeric NOT NULL,
    unweighed_qty  bigint NOT NULL,
    CONSTRAINT material_grams_daily_key
        UNIQUE NULLS NOT DISTINCT (day, packaging_type, brand, material, type, stream)
);

CREATE TABLE material_grams_hourly (
    hour           timestamptz NOT NULL,
    packaging_type text,
    brand          text,
    material       text,
    type           text NOT NULL,
    stream         text,
    qty            bigint NOT NULL,
    grams          numeric NOT NULL,
    recycled_g     numeric NOT NULL,
    renewable_g    numeric NOT NULL,
    fibre_g        numeric NOT NULL,
    unweighed_qty  bigint NOT NULL,
    CONSTRAINT material_grams_hourly_key
        UNIQUE NULLS NOT DISTINCT (hour, packaging_type, brand, material, type, stream)
);


-- ---------------------------------------------------------------------------------------
-- Retention (docs/operations.md)
-- ---------------------------------------------------------------------------------------

-- What pruning has done so far (schemas/retention.py). Raw events and quarter-hour rows
-- older than `horizon` may be gone (NULL: none was ever pruned): whatever re-reads them
-- from the beginning (a rebuild of the day rollups in another zone, a material
-- declaration back in time) refuses to work across it (require_complete_history).
-- `done_before` is the cutoff of the last complete run.
CREATE TABLE retention_state (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    horizon     timestamptz,
    done_before timestamptz
);


-- ---------------------------------------------------------------------------------------
-- The rows a new database starts with
-- ---------------------------------------------------------------------------------------

-- `looptrack db migrate` then sets LOOPTRACK_TIMEZONE here (and rebuilds the day rollups).
INSERT INTO rollup_zone (zone) VALUES ('UTC');

INSERT INTO retention_state DEFAULT VALUES;

INSERT INTO sorting_streams (stream, outcome, material, name) VALUES
    ('reuse', 'reuse', NULL, 'Back into the reuse loop'),
    ('PET', 'material_recycling', 'PET', 'PET to material recycling'),
    ('HDPE', 'material_recycling', 'HDPE', 'HDPE to material recycling'),
    ('PP', 'material_recycling', 'PP', 'PP to material recycling'),
    ('glass', 'material_recycling', 'glass', 'Glass to material recycling'),
    ('aluminium', 'material_recycling', 'aluminium', 'Aluminium to material recycling'),
    ('steel', 'material_recycling', 'steel', 'Steel to material recycling'),
    ('fibre', 'material_recycling', 'fibre', 'Fibre to material recycling'),
    ('energy', 'energy_recovery', NULL, 'Incineration with energy recovery'),
    ('residual', 'residual', NULL, 'Residual waste');

INSERT INTO circularity_targets
    (id, name, metric, materials, value, year, baseline_value, baseline_year, source)
VALUES
    ('no-plastic-recycling-2030', 'Material recycling of plastic packaging',
     'material_recycling_rate', ARRAY['PET', 'HDPE', 'PP'], 0.55, 2030, 0.21, 2020,
     'Norwegian plastic strategy and packaging value chain targets'),
    ('no-fibre-replacement-2025', 'Plastic packaging replaced by fibre',
     'fibre_share', NULL, 0.05, 2025, NULL, NULL,
     'Norwegian packaging value chain targets'),
    ('no-recycled-renewable-plastic-2030', 'Plastic from recycled or renewable material',
     'recycled_or_renewable_share', ARRAY['PET', 'HDPE', 'PP'], 0.60, 2030, 0.04, 2020,
     'Norwegian packaging value chain targets'),
    ('eu-ppwr-collection-2029', 'Separate collection of plastic bottles and metal cans',
     'collection_rate', ARRAY['PET', 'HDPE', 'PP', 'aluminium', 'steel'], 0.90, 2029, NULL, NULL,
     'EU Packaging and Packaging Waste Regulation (EU) 2025/40, Art. 50');
