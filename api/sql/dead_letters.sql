-- name: list_dead_letters
SELECT id, received_at, topic, device_id, reason, detail, batch_index, payload, replayed_at
FROM dead_letters
WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)
  AND (%(device_id)s::text IS NULL OR device_id = %(device_id)s)
  AND (NOT %(pending)s OR replayed_at IS NULL)
  AND (%(before)s::bigint IS NULL OR id < %(before)s)
ORDER BY id DESC
LIMIT %(limit)s

-- name: pending_for_replay
-- Locked so two concurrent replays cannot send the same dead letter twice.
SELECT id, topic, payload FROM dead_letters
WHERE replayed_at IS NULL
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
  AND (%(reason)s::text IS NULL OR reason = %(reason)s)
  AND (%(device_id)s::text IS NULL OR device_id = %(device_id)s)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: mark_replayed
UPDATE dead_letters SET replayed_at = now() WHERE id = %(id)s
