-- name: list_events
-- Newest first, keyset-paginated on (ts, event_id): a page never shifts when events are
-- inserted meanwhile. %(brand)s limits a brand key to its own products' events.
SELECT e.event_id, e.ts, e.received_at, e.type, e.item_class, e.serial, e.qty, e.seq,
       e.device_id, e.site_id, e.reason, e.stream, e.weight_g, e.attrs
FROM events e
WHERE (%(item_class)s::text IS NULL OR e.item_class = %(item_class)s)
  AND (%(serial)s::text IS NULL OR e.serial = %(serial)s)
  AND (%(device_id)s::text IS NULL OR e.device_id = %(device_id)s)
  AND (%(site_id)s::text IS NULL OR e.site_id = %(site_id)s)
  AND (%(type)s::text IS NULL OR e.type = %(type)s)
  AND (%(from)s::timestamptz IS NULL OR e.ts >= %(from)s)
  AND (%(to)s::timestamptz IS NULL OR e.ts < %(to)s)
  AND (%(brand)s::text IS NULL OR e.item_class IN (SELECT item_class FROM products WHERE brand = %(brand)s))
  AND (%(after_ts)s::timestamptz IS NULL OR (e.ts, e.event_id) < (%(after_ts)s, %(after_id)s::uuid))
ORDER BY e.ts DESC, e.event_id DESC
LIMIT %(limit)s
