-- API keys, shared by `looptrack keys`, the API's authentication and /v1/keys.

-- name: insert_key
INSERT INTO api_keys (id, name, role, brand, device_id, key_hash, expires_at)
VALUES (%(id)s, %(name)s, %(role)s, %(brand)s, %(device_id)s, %(key_hash)s, %(expires_at)s)
RETURNING id, name, role, brand, device_id, created_at, expires_at, last_used_at, revoked_at,
    'active'

-- name: find_key
-- The key behind a hash, revoked or expired ones too: the caller says which it is.
SELECT id, role, brand, device_id, revoked_at, expires_at, expires_at <= now() AS expired
FROM api_keys
WHERE key_hash = %(key_hash)s

-- name: list_keys
-- Keys newest first, never the hash: the key `id`, or (`id` NULL) those after the key
-- `after` (NULL: from the newest). The state says why a key is refused, revoked first.
SELECT id, name, role, brand, device_id, created_at, expires_at, last_used_at, revoked_at,
    CASE
        WHEN revoked_at IS NOT NULL THEN 'revoked'
        WHEN expires_at <= now() THEN 'expired'
        ELSE 'active'
    END
FROM api_keys
WHERE (%(id)s::uuid IS NULL OR id = %(id)s::uuid)
    AND (%(after)s::uuid IS NULL
        OR (created_at, id) < (SELECT created_at, id FROM api_keys WHERE id = %(after)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- name: revoke_key
-- Returns the key's revocation time: now when this revokes it, earlier when it already
-- was; no row for an unknown id.
WITH revoked AS (
    UPDATE api_keys SET revoked_at = now()
    WHERE id = %(id)s AND revoked_at IS NULL
    RETURNING revoked_at
)
SELECT revoked_at, true FROM revoked
UNION ALL
SELECT revoked_at, false FROM api_keys WHERE id = %(id)s AND revoked_at IS NOT NULL

-- name: record_use
-- The key was used now: written only when its last use on record is `interval_s` seconds
-- old or older (so never more often, however many processes serve it), and never
-- waiting for the row (SKIP LOCKED: a revocation in progress holds it). Returns the
-- seconds since the use on record after this statement (0 when it wrote; NULL for no key).
WITH due AS (
    SELECT id FROM api_keys
    WHERE id = %(id)s
        AND (last_used_at IS NULL
            OR last_used_at <= now() - make_interval(secs => %(interval_s)s))
    FOR NO KEY UPDATE SKIP LOCKED
), written AS (
    UPDATE api_keys SET last_used_at = now()
    FROM due WHERE api_keys.id = due.id
    RETURNING api_keys.last_used_at
)
SELECT extract(epoch FROM now() - coalesce(
    (SELECT last_used_at FROM written),
    (SELECT last_used_at FROM api_keys WHERE id = %(id)s)
))::float8

-- name: brand_known
-- A brand is known once a product is registered under it.
SELECT EXISTS (SELECT 1 FROM products WHERE brand = %(brand)s)

-- name: device_known
SELECT EXISTS (SELECT 1 FROM devices WHERE id = %(device_id)s)
