-- Rejects per local day (the rollup zone, as return_counts_daily), GTIN and reason: the
-- operators' "rejects by reason" without reading raw events. Kept by the ingest in the
-- batch's transaction; keyed by GTIN, so registering a product moves nothing. A new
-- deployment zone rebuilds it (from the raw rejected events: reasons are not in the
-- 15-minute rollup).
CREATE TABLE reject_counts_daily (
    day    date NOT NULL,
    gtin   text NOT NULL,
    reason text NOT NULL,
    qty    bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (day, gtin, reason)
);

-- The same by local month (`month` is its first day): a year reads 12 rows per GTIN and
-- reason, the days only at a window's ragged ends.
CREATE TABLE reject_counts_monthly (
    month  date NOT NULL,
    gtin   text NOT NULL,
    reason text NOT NULL,
    qty    bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (month, gtin, reason)
);

CREATE FUNCTION rebuild_reject_counts_daily() RETURNS void LANGUAGE sql AS $$
    TRUNCATE reject_counts_daily, reject_counts_monthly;
    INSERT INTO reject_counts_daily (day, gtin, reason, qty, events)
    SELECT (e.ts AT TIME ZONE z.zone)::date, e.gtin, e.reason, sum(e.qty), count(*)
    FROM events e CROSS JOIN rollup_zone z
    WHERE e.type = 'rejected'
    GROUP BY 1, 2, 3;
    INSERT INTO reject_counts_monthly (month, gtin, reason, qty, events)
    SELECT date_trunc('month', day)::date, gtin, reason, sum(qty), sum(events)
    FROM reject_counts_daily
    GROUP BY 1, 2, 3;
$$;

SELECT rebuild_reject_counts_daily();
