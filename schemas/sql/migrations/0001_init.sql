-- looptrack initial schema: registry, events, dedup keys, rollups, dead letters.
-- Runs on plain PostgreSQL >= 15; the last block turns `events` into a TimescaleDB
-- hypertable with compression and retention when the extension can be created.

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
    CHECK (reusable OR target_trips IS NULL)
);

CREATE TABLE products (
    gtin              text PRIMARY KEY CHECK (gtin ~ '^[0-9]{14}$'),
    packaging_type_id text NOT NULL REFERENCES packaging_types (id),
    brand             text NOT NULL CHECK (brand ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
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

-- One serialised physical package. Keyed by (gtin, serial); a later key kind (GRAI) can
-- join as its own columns without touching the events' shape.
CREATE TABLE items (
    gtin            text NOT NULL CHECK (gtin ~ '^[0-9]{14}$'),
    serial          text NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    batch_id        uuid,
    commissioned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gtin, serial)
);

-- The time series. No unique key here: a hypertable's unique keys must include `ts`,
-- so exactly-once is enforced by event_ids below, in the same transaction.
CREATE TABLE events (
    event_id    uuid NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    device_id   text NOT NULL,
    site_id     text NOT NULL,
    type        text NOT NULL
                CHECK (type IN ('commissioned', 'filled', 'sold', 'returned', 'rejected',
                                'sorted', 'washed', 'recycled', 'retired')),
    gtin        text NOT NULL,
    serial      text,
    qty         integer NOT NULL CHECK (qty BETWEEN 1 AND 1000000),
    seq         bigint,
    reason      text,
    stream      text,
    attrs       jsonb
);
CREATE INDEX events_ts ON events (ts DESC);
CREATE INDEX events_item ON events (gtin, serial, ts) WHERE serial IS NOT NULL;
CREATE INDEX events_device ON events (device_id, ts DESC);

-- The idempotency keys: one row per stored event, whatever its `ts`.
CREATE TABLE event_ids (
    event_id uuid PRIMARY KEY,
    ts       timestamptz NOT NULL
);

-- Rollup read by the statistics: Σqty and event count per 15-minute bucket (the finest
-- granularity any time zone's day boundary needs), site, GTIN and event type. Kept in the
-- transaction that inserts the raw events, so it always agrees with them.
CREATE TABLE event_counts_15m (
    bucket  timestamptz NOT NULL,
    site_id text NOT NULL,
    gtin    text NOT NULL,
    type    text NOT NULL,
    qty     bigint NOT NULL,
    events  bigint NOT NULL,
    PRIMARY KEY (bucket, site_id, gtin, type)
);

-- Per device and UTC day, for "events today" on the device list.
CREATE TABLE device_counts_daily (
    day       date NOT NULL,
    device_id text NOT NULL,
    events    bigint NOT NULL,
    PRIMARY KEY (device_id, day)
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL,
    -- index in {"events": [...]} for a bad event of a batch, NULL for a whole message
    batch_index integer,
    -- the raw message, or the bad event of a batch as compact JSON
    payload     bytea NOT NULL,
    replayed_at timestamptz
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_pending ON dead_letters (reason) WHERE replayed_at IS NULL;

-- Running totals per ingest worker, updated in each batch's transaction.
CREATE TABLE ingest_counters (
    worker        text PRIMARY KEY,
    stored        bigint NOT NULL DEFAULT 0,
    duplicates    bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- TimescaleDB: the runner sets looptrack.timescaledb to 'auto' or 'off'. Functions are
-- called through PERFORM/EXECUTE so plain PostgreSQL never needs to resolve them.
DO $$
BEGIN
    IF current_setting('looptrack.timescaledb', true) IS DISTINCT FROM 'off'
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'
    THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('events', 'ts', chunk_time_interval => INTERVAL '1 day',
                                  create_default_indexes => false);
        BEGIN
            EXECUTE 'ALTER TABLE events SET (timescaledb.compress,
                     timescaledb.compress_segmentby = ''device_id'',
                     timescaledb.compress_orderby = ''ts DESC'')';
            -- Old chunks are rarely written (late events only) and read by item history.
            PERFORM add_compression_policy('events', INTERVAL '14 days');
            -- Raw events are kept 5 years; the rollups above keep the totals beyond that.
            PERFORM add_retention_policy('events', INTERVAL '5 years');
        EXCEPTION WHEN feature_not_supported THEN
            -- An Apache-2-only build (timescaledb.license = apache, some distributions'
            -- packages) has hypertables but neither compression nor policies.
            RAISE NOTICE 'looptrack: TimescaleDB without compression and retention: %', SQLERRM;
        END;
        RAISE NOTICE 'looptrack: events is a TimescaleDB hypertable';
    END IF;
END
$$;
