-- API keys, shared by `looptrack keys create` and the API's authentication.

-- name: insert_key
INSERT INTO api_keys (id, name, role, brand, device_id, key_hash)
VALUES (%(id)s, %(name)s, %(role)s, %(brand)s, %(device_id)s, %(key_hash)s)

-- name: find_key
SELECT id, role, brand, device_id FROM api_keys
WHERE key_hash = %(key_hash)s AND revoked_at IS NULL

-- name: list_keys
-- Every key, newest first; never the hash.
SELECT id, name, role, brand, device_id, created_at, revoked_at FROM api_keys
ORDER BY created_at DESC, id

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

-- name: brand_known
-- A brand is known once a product is registered under it.
SELECT EXISTS (SELECT 1 FROM products WHERE brand = %(brand)s)
