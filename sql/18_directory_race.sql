-- The first export into an export_dir that does not exist yet: the workers
-- create the directory tree together, and one that loses the race to create
-- a directory (the root, one of its parents, the spool, a tenant's or a
-- day's) carries on below it.  debug_fault = concurrent_mkdir has another
-- creator win every such race, deterministically.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) SELECT 't' || g, 'Tenant ' || g FROM generate_series(1, 40) g;
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, 't' || (g % 40 + 1), timestamptz '2026-03-30 10:00:00+00' + g * interval '1 hour'
FROM generate_series(1, 400) g;

SELECT test_helpers.export_dir() AS base_dir \gset
SELECT set_config('interactions_cron.export_dir', :'base_dir' || '/race/every/level', false) IS NOT NULL AS fresh_root;
SELECT pg_stat_file(:'base_dir' || '/race', true) IS NULL AS race_missing_before;
SET interactions_cron.debug_fault = 'concurrent_mkdir';
SELECT count(*) AS tenants, count(*) FILTER (WHERE error IS NULL) AS succeeded, sum(exported) AS exported
FROM test_helpers.outcomes(interactions_cron.export_interactions());
RESET interactions_cron.debug_fault;
SELECT count(*) AS files FROM test_helpers.export_files();
SELECT * FROM test_helpers.rows_not_exported_once();

-- The same without the fault, ten first exports in a row, each into fresh
-- nested directories, with forty tenants: no tenant fails.  (The statements
-- name absolute paths, so they are not echoed.)
CREATE TABLE test_helpers.first_export_errors (round int, tenant_id text, error text);
\set ECHO none
\set QUIET on
SELECT format($$SET interactions_cron.export_dir = %L$$, :'base_dir' || '/race/round' || round || '/nested/deeper'),
       'DELETE FROM interactions_cron.export_checkpoints',
       format($$INSERT INTO test_helpers.first_export_errors
                SELECT %s, tenant_id, error
                FROM test_helpers.outcomes(interactions_cron.export_interactions())
                WHERE error IS NOT NULL$$, round)
FROM generate_series(1, 10) round \gexec
\set QUIET off
\set ECHO all
SELECT round, tenant_id, test_helpers.masked(error) FROM test_helpers.first_export_errors ORDER BY 1, 2;
SELECT count(*) AS files FROM test_helpers.export_files();
SELECT * FROM test_helpers.rows_not_exported_once();

RESET interactions_cron.export_dir;
DROP TABLE test_helpers.first_export_errors;
\set ECHO none
SELECT format('COPY (SELECT WHERE false) TO PROGRAM %L', format('rm -rf %s/race', :'base_dir')) \gexec
\set ECHO all
SELECT test_helpers.reset_all();
