-- name: set_password
-- Creates the account or gives it a new password (a revoked one comes back); never
-- changes an account's role.
INSERT INTO broker_accounts (username, role, device_id, password_hash)
VALUES (%(username)s, %(role)s, %(device_id)s, %(password_hash)s)
ON CONFLICT (username) DO UPDATE
    SET password_hash = excluded.password_hash, revoked_at = NULL
    WHERE broker_accounts.role = excluded.role
RETURNING username;

-- name: revoke
UPDATE broker_accounts SET password_hash = NULL, revoked_at = now()
WHERE username = %(username)s AND revoked_at IS NULL
RETURNING username;

-- name: active_accounts
SELECT username, role, password_hash FROM broker_accounts
WHERE password_hash IS NOT NULL
ORDER BY username;
