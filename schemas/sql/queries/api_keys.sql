-- API keys, shared by `looptrack keys create` and the API's authentication.

-- name: insert_key
INSERT INTO api_keys (id, name, role, brand, device_id, key_hash)
VALUES (%(id)s, %(name)s, %(role)s, %(brand)s, %(device_id)s, %(key_hash)s)

-- name: find_key
SELECT id, role, brand, device_id FROM api_keys
WHERE key_hash = %(key_hash)s AND revoked_at IS NULL
