-- The statements every tenant's batch runs on the extension's tables reach
-- their rows by the primary key's index, however small the tables were when
-- the plans were made: the workers keep generic plans for a whole run, over
-- which export_checkpoints grows from empty to a row per tenant, and a
-- sequential scan chosen while it was empty would read it whole for each.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name)
SELECT format('keyed_%s', lpad(g::text, 3, '0')), 'Keyed ' || g FROM generate_series(1, 200) g;
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, format('keyed_%s', lpad(g::text, 3, '0')), '2026-03-30 04:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 200) g;
-- Statistics that say the tables are empty, as autovacuum would leave them.
VACUUM ANALYZE interactions_cron.export_checkpoints, interactions_cron.export_intents;

CREATE TABLE test_helpers.scans_before AS
SELECT relname, seq_scan, idx_scan FROM pg_stat_user_tables
WHERE schemaname = 'interactions_cron' AND relname IN ('export_checkpoints', 'export_intents');

SELECT (r->>'totalExported')::int AS exported, r->>'ok' AS ok
FROM interactions_cron.export_interactions() r;

-- The workers' statistics arrive as they exit: wait (10 s at most) until
-- every tenant's three claims (write, place, confirm) are counted.
CREATE FUNCTION test_helpers.scans_since_before()
RETURNS TABLE (relname name, seq_scans bigint, idx_scans bigint) LANGUAGE sql AS $$
    SELECT s.relname, s.seq_scan - b.seq_scan, s.idx_scan - b.idx_scan
    FROM pg_stat_user_tables s JOIN test_helpers.scans_before b USING (relname)
    WHERE s.schemaname = 'interactions_cron'
$$;
DO $$
BEGIN
    FOR attempt IN 1 .. 100 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN (SELECT idx_scans FROM test_helpers.scans_since_before()
                   WHERE relname = 'export_checkpoints') >= 600;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT pg_stat_clear_snapshot();
-- A few sequential scans per call are the call's own (the tenants it lists,
-- the histories it compares), never one per tenant.
SELECT relname, seq_scans < 20 AS seq_scans_per_call_not_per_tenant,
       idx_scans >= CASE relname WHEN 'export_checkpoints' THEN 600 ELSE 200 END AS index_scans_per_tenant
FROM test_helpers.scans_since_before() ORDER BY relname;
DROP FUNCTION test_helpers.scans_since_before();
DROP TABLE test_helpers.scans_before;

-- The batch query is planned as a prepared statement is: a few custom plans,
-- then the generic one.  A generic plan is made for no tenant in particular,
-- and must still read a tenant's backlog in the index's order, one batch at a
-- time, never sort the whole backlog for each batch: forced here for every
-- execution, a drain of 1,000 rows (ties on created_at included) in batches
-- of 100 fetches about as many rows as it exports, where a sort would fetch
-- 5,500.  Both statements are used: the first batch has no last id.  The
-- table's statistics show 5,000 other tenants of a row each (not exported),
-- as a platform's would: the plan expects a row or two for any tenant.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('whale', 'Whale');
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, 'whale', '2026-03-30 04:00:00+00'::timestamptz + (g / 3) * interval '1 second'
FROM generate_series(1, 1000) g;
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT 1000 + g, format('minnow_%s', g), '2026-03-30 04:00:00+00'::timestamptz
FROM generate_series(1, 5000) g;
ANALYZE interaction_history;
-- The workers plan with the caller's settings.
SET plan_cache_mode = force_generic_plan;
CREATE TABLE test_helpers.fetches_before AS
SELECT sum(idx_tup_fetch) AS fetched FROM pg_stat_user_tables
WHERE schemaname = 'public' AND relname LIKE 'interaction\_history%';

SELECT t->>'exported' AS exported, t->>'batches' AS batches, t->>'caughtUp' AS caught_up
FROM jsonb_array_elements(interactions_cron.export_interactions(batch_size => 100,
                                                                 max_runtime => '1 hour')->'tenants') t;
SELECT count(*) AS whale_rows_not_exported_once FROM test_helpers.rows_not_exported_once() WHERE id <= 1000;

CREATE FUNCTION test_helpers.fetches_since_before()
RETURNS numeric LANGUAGE sql AS $$
    SELECT sum(s.idx_tup_fetch) - (SELECT fetched FROM test_helpers.fetches_before)
    FROM pg_stat_user_tables s
    WHERE s.schemaname = 'public' AND s.relname LIKE 'interaction\_history%'
$$;
DO $$
BEGIN
    FOR attempt IN 1 .. 100 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN test_helpers.fetches_since_before() >= 1000;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT pg_stat_clear_snapshot();
SELECT test_helpers.fetches_since_before() BETWEEN 1000 AND 1500 AS fetched_about_once_per_row;
RESET plan_cache_mode;
DROP FUNCTION test_helpers.fetches_since_before();
DROP TABLE test_helpers.fetches_before;
