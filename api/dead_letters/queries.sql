-- name: list_dead_letters
-- Lists carry a preview, never the payload: its first %(preview_bytes)s bytes, cut here so
-- no more ever leaves the database; the whole stored payload is get_dead_letter's.
SELECT id, received_at, topic, device_id, reason, detail, batch_index,
       substring(payload FROM 1 FOR %(preview_bytes)s) AS payload_preview,
       payload_size,
       encode(payload_sha256, 'hex') AS payload_sha256,
       octet_length(payload) < payload_size AS payload_truncated, replayed_at
FROM dead_letters
WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)
  AND (%(device_id)s::text IS NULL OR device_id = %(device_id)s)
  AND (NOT %(pending)s OR replayed_at IS NULL)
  AND (%(before)s::bigint IS NULL OR id < %(before)s)
ORDER BY id DESC
LIMIT %(limit)s

-- name: get_dead_letter
-- One dead letter with its whole stored payload (at most 256 KiB, or a 4 KiB head).
SELECT id, received_at, topic, device_id, reason, detail, batch_index, payload, payload_size,
       encode(payload_sha256, 'hex') AS payload_sha256,
       octet_length(payload) < payload_size AS payload_truncated, replayed_at
FROM dead_letters
WHERE id = %(id)s

-- name: pending_for_replay
-- Locked so two concurrent replays cannot send the same dead letter twice. A dead letter
-- holding only the head of its payload (shorter than payload_size) is never sent: the
-- worker would take the head for the message.
SELECT id, topic, payload FROM dead_letters
WHERE replayed_at IS NULL
  AND octet_length(payload) = payload_size
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
  AND (%(reason)s::text IS NULL OR reason = %(reason)s)
  AND (%(device_id)s::text IS NULL OR device_id = %(device_id)s)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: mark_replayed
UPDATE dead_letters SET replayed_at = now() WHERE id = %(id)s
