-- Retention (docs/operations.md, Retention): one horizon, LOOPTRACK_RETENTION_DAYS, for raw
-- events, their idempotency keys (event_ids), the quarter-hour rollups (event_counts_15m,
-- material_counts_15m) and dead letters. schemas/retention.py prunes in short batches; the
-- hour, day and month rollups and the reuse aggregates are kept: they are the long-term
-- totals. The ingest refuses events older than the retention, so an event whose id was
-- pruned cannot be stored a second time.

-- What pruning has done so far. Raw events and quarter-hour rows older than `horizon` may
-- be gone (NULL: none was ever pruned): whatever re-reads them from the beginning (a
-- rebuild of the day rollups in another zone, a material declaration back in time)
-- refuses to work across it. `done_before` is the cutoff of the last complete run: what
-- the job prunes was gone before it then (with TimescaleDB, the next run's walk over the
-- events whose keys go starts there).
CREATE TABLE retention_state (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    horizon     timestamptz,
    done_before timestamptz
);

INSERT INTO retention_state DEFAULT VALUES;

-- Raises unless all history is still there: for operations that re-read raw events or
-- quarter-hour rows from the beginning. `needed_for` says what, `advice` what to do instead.
CREATE FUNCTION require_complete_history(needed_for text, advice text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    gone_before timestamptz := (SELECT horizon FROM retention_state);
BEGIN
    IF gone_before IS NOT NULL THEN
        RAISE EXCEPTION '% needs every raw event and quarter-hour count, but those before % '
                        'were pruned (LOOPTRACK_RETENTION_DAYS); %',
                        needed_for, to_char(gone_before AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS"Z"'), advice
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;

-- TimescaleDB: the retention job drops old chunks of `events` itself, at the same horizon
-- as everything else, so 0001's fixed 5-year policy goes (the setting replaces it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        BEGIN
            PERFORM remove_retention_policy('events', if_exists => true);
        EXCEPTION WHEN feature_not_supported THEN
            -- An Apache-2-only build never had the policy.
            NULL;
        END;
    END IF;
END
$$;
