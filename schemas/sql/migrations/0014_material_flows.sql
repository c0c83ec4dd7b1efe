-- Material flows (docs/materials.md): what packaging is made of, where sorted streams go,
-- the circularity targets, and the rollups that weigh placed-on-market, collected and
-- sorted packaging without reading raw events.

-- A sorted event's measured weight of all its qty (g); NULL: the nominal weight counts.
ALTER TABLE events ADD COLUMN weight_g double precision;

ALTER TABLE packaging_types
    ADD COLUMN recycled_content_pct numeric(5, 2) NOT NULL DEFAULT 0
        CHECK (recycled_content_pct BETWEEN 0 AND 100),
    ADD COLUMN renewable_content_pct numeric(5, 2) NOT NULL DEFAULT 0
        CHECK (renewable_content_pct BETWEEN 0 AND 100),
    ADD COLUMN fibre_based boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT packaging_types_content_at_most_whole
        CHECK (recycled_content_pct + renewable_content_pct <= 100);

-- A product's own content figures where they differ from its packaging type's (NULL: the
-- packaging type's).
ALTER TABLE products
    ADD COLUMN recycled_content_pct numeric(5, 2)
        CHECK (recycled_content_pct BETWEEN 0 AND 100),
    ADD COLUMN renewable_content_pct numeric(5, 2)
        CHECK (renewable_content_pct BETWEEN 0 AND 100),
    ADD COLUMN fibre_based boolean;

-- What each product declared, and from when: the figures of an event are those of the
-- declaration in force at its quarter hour. A product's first declaration starts at
-- -infinity, so it also covers events from before the product was registered.
CREATE TABLE material_declarations (
    gtin                  text NOT NULL,
    declared_from         timestamptz NOT NULL,
    material              text NOT NULL,
    weight_g              numeric(10, 2),
    recycled_content_pct  numeric(5, 2) NOT NULL,
    renewable_content_pct numeric(5, 2) NOT NULL,
    fibre_based           boolean NOT NULL,
    saved_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gtin, declared_from),
    CONSTRAINT material_declarations_content_at_most_whole
        CHECK (recycled_content_pct + renewable_content_pct <= 100)
);

-- Where a sorting site's stream goes (registry data, read at query time).
CREATE TABLE sorting_streams (
    stream     text PRIMARY KEY,
    outcome    text NOT NULL
               CHECK (outcome IN ('reuse', 'material_recycling', 'energy_recovery', 'residual')),
    material   text,
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sorting_streams_material_only_for_recycling
        CHECK (material IS NULL OR outcome = 'material_recycling')
);

INSERT INTO sorting_streams (stream, outcome, material, name) VALUES
    ('reuse', 'reuse', NULL, 'Back into the reuse loop'),
    ('PET', 'material_recycling', 'PET', 'PET to material recycling'),
    ('HDPE', 'material_recycling', 'HDPE', 'HDPE to material recycling'),
    ('PP', 'material_recycling', 'PP', 'PP to material recycling'),
    ('glass', 'material_recycling', 'glass', 'Glass to material recycling'),
    ('aluminium', 'material_recycling', 'aluminium', 'Aluminium to material recycling'),
    ('steel', 'material_recycling', 'steel', 'Steel to material recycling'),
    ('fibre', 'material_recycling', 'fibre', 'Fibre to material recycling'),
    ('energy', 'energy_recovery', NULL, 'Incineration with energy recovery'),
    ('residual', 'residual', NULL, 'Residual waste');

-- The targets the figures are measured against (registry data).
CREATE TABLE circularity_targets (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    metric         text NOT NULL CHECK (metric IN (
                       'collection_rate', 'material_recycling_rate', 'reuse_share',
                       'recycled_content_share', 'renewable_content_share',
                       'recycled_or_renewable_share', 'fibre_share')),
    materials      text[],
    value          numeric(6, 5) NOT NULL CHECK (value BETWEEN 0 AND 1),
    year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    baseline_value numeric(6, 5) CHECK (baseline_value BETWEEN 0 AND 1),
    baseline_year  integer CHECK (baseline_year BETWEEN 1990 AND 2100),
    source         text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO circularity_targets
    (id, name, metric, materials, value, year, baseline_value, baseline_year, source)
VALUES
    ('no-plastic-recycling-2030', 'Material recycling of plastic packaging',
     'material_recycling_rate', ARRAY['PET', 'HDPE', 'PP'], 0.55, 2030, 0.21, 2020,
     'Norwegian plastic strategy and packaging value chain targets'),
    ('no-fibre-replacement-2025', 'Plastic packaging replaced by fibre',
     'fibre_share', NULL, 0.05, 2025, NULL, NULL,
     'Norwegian packaging value chain targets'),
    ('no-recycled-renewable-plastic-2030', 'Plastic from recycled or renewable material',
     'recycled_or_renewable_share', ARRAY['PET', 'HDPE', 'PP'], 0.60, 2030, 0.04, 2020,
     'Norwegian packaging value chain targets'),
    ('eu-ppwr-collection-2029', 'Separate collection of plastic bottles and metal cans',
     'collection_rate', ARRAY['PET', 'HDPE', 'PP', 'aluminium', 'steel'], 0.90, 2029, NULL, NULL,
     'EU Packaging and Packaging Waste Regulation (EU) 2025/40, Art. 50');

-- Σ qty and measured grams of sold, returned and sorted events per quarter hour, GTIN,
-- declaration in force (NULL while the GTIN is unregistered) and stream. Kept by the
-- worker in the batch's transaction; re-filed by refile_material_counts when a
-- declaration changes.
CREATE TABLE material_counts_15m (
    bucket        timestamptz NOT NULL,
    gtin          text NOT NULL,
    declared_from timestamptz,
    type          text NOT NULL CHECK (type IN ('sold', 'returned', 'sorted')),
    stream        text,
    qty           bigint NOT NULL,
    measured_g    double precision NOT NULL,  -- Σ weight_g of the events that carried one
    measured_qty  bigint NOT NULL,            -- Σ qty of those events
    CONSTRAINT material_counts_15m_key
        UNIQUE NULLS NOT DISTINCT (bucket, gtin, declared_from, type, stream)
);
CREATE INDEX material_counts_15m_gtin ON material_counts_15m (gtin, bucket);

-- The same per local day of the rollup zone, for windows of whole days in that zone.
CREATE TABLE material_counts_daily (
    day           date NOT NULL,
    gtin          text NOT NULL,
    declared_from timestamptz,
    type          text NOT NULL,
    stream        text,
    qty           bigint NOT NULL,
    measured_g    double precision NOT NULL,
    measured_qty  bigint NOT NULL,
    CONSTRAINT material_counts_daily_key
        UNIQUE NULLS NOT DISTINCT (day, gtin, declared_from, type, stream)
);
CREATE INDEX material_counts_daily_gtin ON material_counts_daily (gtin, day);

-- The declaration of `gtin` in force at `instant` (NULL: none yet).
CREATE FUNCTION declaration_at(of_gtin text, instant timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT max(d.declared_from) FROM material_declarations d
    WHERE d.gtin = of_gtin AND d.declared_from <= instant
$$;

-- Day rows of `gtin` from the local day of `since` on, again from the quarter hours.
CREATE FUNCTION rebuild_material_days(of_gtin text, since timestamptz) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM material_counts_daily d USING rollup_zone z
    WHERE d.gtin = of_gtin AND d.day >= (since AT TIME ZONE z.zone)::date;
    INSERT INTO material_counts_daily
        (day, gtin, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT (m.bucket AT TIME ZONE z.zone)::date, m.gtin, m.declared_from, m.type, m.stream,
           sum(m.qty), sum(m.measured_g), sum(m.measured_qty)
    FROM material_counts_15m m CROSS JOIN rollup_zone z
    WHERE m.gtin = of_gtin
      AND m.bucket >= ((since AT TIME ZONE z.zone)::date::timestamp AT TIME ZONE z.zone)
    GROUP BY 1, 2, 3, 4, 5;
$$;

-- Points the counts of `gtin` from `since` on at the declarations then in force. Callers
-- hold the GTIN's lock slot exclusively (schemas.rollups), so no batch counts meanwhile.
CREATE FUNCTION refile_material_counts(of_gtin text, since timestamptz) RETURNS void
LANGUAGE sql AS $$
    WITH moved AS (
        DELETE FROM material_counts_15m
        WHERE gtin = of_gtin AND bucket >= since
        RETURNING *
    )
    INSERT INTO material_counts_15m
        (bucket, gtin, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT bucket, gtin, declaration_at(gtin, bucket), type, stream,
           sum(qty), sum(measured_g), sum(measured_qty)
    FROM moved GROUP BY 1, 2, 3, 4, 5;
    SELECT rebuild_material_days(of_gtin, since);
$$;

-- Records what `gtins` declare now (their packaging type's figures, overridden by their
-- own) from `requested`, or from the next quarter hour when NULL; a GTIN's first
-- declaration starts at -infinity. Declarations from `since` on that it replaces are
-- dropped, and counted events re-filed. Returns the start it used, NULL if nothing changed.
CREATE FUNCTION declare_materials(gtins text[], requested timestamptz) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    product record;
    latest material_declarations%ROWTYPE;
    since timestamptz;
    used timestamptz;
BEGIN
    FOR product IN
        SELECT p.gtin, t.material, t.weight_g,
               coalesce(p.recycled_content_pct, t.recycled_content_pct) AS recycled,
               coalesce(p.renewable_content_pct, t.renewable_content_pct) AS renewable,
               coalesce(p.fibre_based, t.fibre_based) AS fibre
        FROM products p JOIN packaging_types t ON t.id = p.packaging_type_id
        WHERE p.gtin = ANY (gtins)
        ORDER BY p.gtin
    LOOP
        SELECT * INTO latest FROM material_declarations d
        WHERE d.gtin = product.gtin ORDER BY d.declared_from DESC LIMIT 1;
        IF NOT FOUND THEN
            since := '-infinity';
        ELSIF requested IS NULL
              AND (latest.material, latest.weight_g, latest.recycled_content_pct,
                   latest.renewable_content_pct, latest.fibre_based)
                  IS NOT DISTINCT FROM
                  (product.material, product.weight_g, product.recycled, product.renewable,
                   product.fibre) THEN
            CONTINUE;
        ELSE
            since := coalesce(
                date_bin('15 minutes', requested, TIMESTAMPTZ '2000-01-01 00:00+00'),
                date_bin('15 minutes', now(), TIMESTAMPTZ '2000-01-01 00:00+00')
                    + interval '15 minutes');
            DELETE FROM material_declarations d
            WHERE d.gtin = product.gtin AND d.declared_from >= since;
        END IF;
        INSERT INTO material_declarations
            (gtin, declared_from, material, weight_g, recycled_content_pct,
             renewable_content_pct, fibre_based)
        VALUES (product.gtin, since, product.material, product.weight_g, product.recycled,
                product.renewable, product.fibre);
        PERFORM refile_material_counts(product.gtin, since);
        used := since;
    END LOOP;
    RETURN used;
END
$$;

-- Every day row from the quarter hours (also when the rollup zone changes).
CREATE FUNCTION rebuild_material_days_all() RETURNS void LANGUAGE sql AS $$
    TRUNCATE material_counts_daily;
    INSERT INTO material_counts_daily
        (day, gtin, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT (m.bucket AT TIME ZONE z.zone)::date, m.gtin, m.declared_from, m.type, m.stream,
           sum(m.qty), sum(m.measured_g), sum(m.measured_qty)
    FROM material_counts_15m m CROSS JOIN rollup_zone z
    GROUP BY 1, 2, 3, 4, 5;
$$;

-- Every quarter hour and day row again from the raw events (this migration, and
-- bench scripts that load events by SQL).
CREATE FUNCTION rebuild_material_counts() RETURNS void LANGUAGE sql AS $$
    TRUNCATE material_counts_15m, material_counts_daily;
    INSERT INTO material_counts_15m
        (bucket, gtin, declared_from, type, stream, qty, measured_g, measured_qty)
    SELECT b.bucket, b.gtin, declaration_at(b.gtin, b.bucket), b.type, b.stream,
           b.qty, b.measured_g, b.measured_qty
    FROM (
        SELECT date_bin('15 minutes', e.ts, TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket,
               e.gtin, e.type, e.stream, sum(e.qty) AS qty,
               coalesce(sum(e.weight_g), 0) AS measured_g,
               coalesce(sum(e.qty) FILTER (WHERE e.weight_g IS NOT NULL), 0) AS measured_qty
        FROM events e
        WHERE e.type IN ('sold', 'returned', 'sorted')
        GROUP BY 1, 2, 3, 4
    ) b;
    SELECT rebuild_material_days_all();
$$;

-- Existing products' first declarations, then the counts of the events already stored.
INSERT INTO material_declarations
    (gtin, declared_from, material, weight_g, recycled_content_pct, renewable_content_pct,
     fibre_based)
SELECT p.gtin, '-infinity', t.material, t.weight_g, t.recycled_content_pct,
       t.renewable_content_pct, t.fibre_based
FROM products p JOIN packaging_types t ON t.id = p.packaging_type_id;

SELECT rebuild_material_counts();
