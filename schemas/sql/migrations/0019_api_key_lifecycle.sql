-- API key lifecycle (issue 22.1). A key may carry an expiry: from then on it is refused
-- like a revoked one, and its pages' sessions end. `last_used_at` is when the key was last
-- used, written at most once per key every few minutes (schemas/api_keys.py,
-- LAST_USED_PRECISION_S) so that using a key is not a write per request.
ALTER TABLE api_keys
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD CONSTRAINT api_keys_expires_after_creation CHECK (expires_at > created_at);
