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
