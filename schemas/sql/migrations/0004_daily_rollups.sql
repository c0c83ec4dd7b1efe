-- Day-level rollups in the deployment's zone (LOOPTRACK_TIMEZONE, recorded in `tz`), so a
-- year of daily return rates reads a few thousand rows instead of every quarter hour.
-- Other zones, and windows not on local midnights, still use event_counts_15m.
CREATE TABLE event_counts_daily (
    tz     text NOT NULL,
    day    date NOT NULL,
    gtin   text NOT NULL,
    type   text NOT NULL,
    qty    bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (tz, day, gtin, type)
);

CREATE TABLE site_counts_daily (
    tz      text NOT NULL,
    site_id text NOT NULL,
    day     date NOT NULL,
    gtin    text NOT NULL,
    type    text NOT NULL,
    qty     bigint NOT NULL,
    events  bigint NOT NULL,
    PRIMARY KEY (tz, site_id, day, gtin, type)
);

-- Counts already kept per quarter hour, folded into days of the configured zone (the
-- runner sets looptrack.timezone).
INSERT INTO event_counts_daily (tz, day, gtin, type, qty, events)
SELECT z.tz, (c.bucket AT TIME ZONE z.tz)::date, c.gtin, c.type, sum(c.qty), sum(c.events)
FROM event_counts_15m c,
     (SELECT coalesce(current_setting('looptrack.timezone', true), 'UTC') AS tz) z
GROUP BY 1, 2, 3, 4;

INSERT INTO site_counts_daily (tz, site_id, day, gtin, type, qty, events)
SELECT z.tz, c.site_id, (c.bucket AT TIME ZONE z.tz)::date, c.gtin, c.type, sum(c.qty),
       sum(c.events)
FROM event_counts_15m c,
     (SELECT coalesce(current_setting('looptrack.timezone', true), 'UTC') AS tz) z
GROUP BY 1, 2, 3, 4, 5;
