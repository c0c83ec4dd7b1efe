-- The one definition of a trip (SPEC §7), shared by reuse statistics, anomalies and item
-- pages: the events of serialised items that open or close trips, each with the previous
-- one of its item. A `returned` ends a trip unless the previous of these was a `returned`
-- too (a duplicate return: possible cloned label).
CREATE VIEW loop_events AS
SELECT e.gtin, e.serial, e.ts, e.event_id, e.type, e.device_id, e.site_id,
       lag(e.type) OVER item AS previous_type,
       lag(e.ts) OVER item AS previous_ts,
       e.type = 'returned' AND lag(e.type) OVER item IS DISTINCT FROM 'returned' AS trip_end
FROM events e
WHERE e.serial IS NOT NULL AND e.type IN ('sold', 'filled', 'returned')
WINDOW item AS (PARTITION BY e.gtin, e.serial ORDER BY e.ts, e.event_id);
