-- Page sessions (issue 22.2): the login cookie holds a random session id, not the API key,
-- and only its SHA-256 is stored. A session ends at logout (its row deleted), when it
-- expires, or when its key is revoked.
CREATE TABLE page_sessions (
    id_hash    bytea PRIMARY KEY,
    key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX page_sessions_expires ON page_sessions (expires_at);
CREATE INDEX page_sessions_key ON page_sessions (key_id);
