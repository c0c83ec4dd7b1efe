-- EPCIS 2.0 export and capture (api/epcis/).

-- name: object_events
-- Events as ObjectEvents, newest first, keyset-paginated on (ts, event_id) like
-- GET /v1/events (a page never shifts when events are inserted meanwhile). A NULL array
-- means "no such filter". %(epc_item_classes)s/%(epc_serials)s pair up (a NULL serial: any
-- serial of that item class) and select serialised events;
-- %(unserialised_item_classes)s selects unserialised ones. %(sorted_to_reuse)s limits `sorted` events to stream reuse (true) or the others
-- (false). %(brand)s limits a brand key to its own products' events.
SELECT e.event_id, e.ts, e.received_at, e.type, e.item_class, e.serial, e.qty, e.seq,
       e.device_id, e.site_id, e.reason, e.stream, e.attrs
FROM events e
WHERE (%(from)s::timestamptz IS NULL OR e.ts >= %(from)s)
  AND (%(to)s::timestamptz IS NULL OR e.ts < %(to)s)
  AND (%(types)s::text[] IS NULL OR e.type = ANY (%(types)s::text[]))
  AND (%(sorted_to_reuse)s::boolean IS NULL OR e.type <> 'sorted'
       OR (e.stream = 'reuse') = %(sorted_to_reuse)s::boolean)
  AND (%(event_ids)s::uuid[] IS NULL OR e.event_id = ANY (%(event_ids)s::uuid[]))
  AND (%(device_ids)s::text[] IS NULL OR e.device_id = ANY (%(device_ids)s::text[]))
  AND (%(site_ids)s::text[] IS NULL OR e.site_id = ANY (%(site_ids)s::text[]))
  AND (%(epc_item_classes)s::text[] IS NULL OR (e.serial IS NOT NULL AND EXISTS (
        SELECT 1 FROM unnest(%(epc_item_classes)s::text[], %(epc_serials)s::text[]) AS m (item_class, serial)
        WHERE m.item_class = e.item_class AND (m.serial IS NULL OR m.serial = e.serial))))
  AND (%(unserialised_item_classes)s::text[] IS NULL
       OR (e.serial IS NULL AND e.item_class = ANY (%(unserialised_item_classes)s::text[])))
  AND (%(brand)s::text IS NULL OR e.item_class IN (SELECT item_class FROM products WHERE brand = %(brand)s))
  AND (%(after_ts)s::timestamptz IS NULL OR (e.ts, e.event_id) < (%(after_ts)s, %(after_id)s::uuid))
ORDER BY e.ts DESC, e.event_id DESC
LIMIT %(limit)s

-- name: devices
-- The registered devices among %(ids)s, with their sites (capture checks readPoints).
SELECT id, site_id FROM devices WHERE id = ANY (%(ids)s::text[])
