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
    CHECK ((role = 'brand') = (brand IS NOT NULL)),
    CHECK ((role = 'device') = (device_id IS NOT NULL))
);
