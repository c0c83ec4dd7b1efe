-- Page sessions (schemas.page_sessions), for the pages' login cookie.

-- name: start_session
-- A new session, and the expired ones gone (a login is rare; they are few).
WITH expired AS (
    DELETE FROM page_sessions WHERE expires_at <= now()
)
INSERT INTO page_sessions (id_hash, key_id, expires_at)
VALUES (%(id_hash)s, %(key_id)s, now() + make_interval(secs => %(lifetime_s)s))

-- name: session_caller
-- The caller behind a live session of a key that is neither revoked nor expired.
SELECT k.id, k.role, k.brand, k.device_id
FROM page_sessions s JOIN api_keys k ON k.id = s.key_id
WHERE s.id_hash = %(id_hash)s AND s.expires_at > now() AND k.revoked_at IS NULL
    AND (k.expires_at IS NULL OR k.expires_at > now())

-- name: end_session
DELETE FROM page_sessions WHERE id_hash = %(id_hash)s
