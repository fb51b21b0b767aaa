-- pgTAP: cleanup()'s counts and skip paths, the run history, export_status.
BEGIN;
SELECT plan(22);

SELECT has_table('interactions_cron', 'job_runs', 'the run history table exists');
SELECT col_is_pk('interactions_cron', 'job_runs', 'id', 'runs have an id');
SELECT has_view('interactions_cron', 'export_status', 'the export status view exists');
SELECT function_returns('interactions_cron', 'cleanup', ARRAY[]::text[], 'jsonb', 'cleanup returns jsonb');
SELECT function_privs_are('interactions_cron', 'cleanup', ARRAY[]::text[], 'public', ARRAY[]::text[],
                          'PUBLIC cannot run cleanup');
SELECT table_privs_are('interactions_cron', 'job_runs', 'public', ARRAY[]::text[], 'PUBLIC cannot read the run history');

-- Nothing to delete.
SELECT is(interactions_cron.cleanup()->'cleaned'->'expiredSuppressions', '0'::jsonb, 'nothing expired: 0');
SELECT is(interactions_cron.cleanup()->>'status', 'ok', 'status ok');

-- Only NULL expiries: they never expire.
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at) VALUES ('t', 'a', NULL), ('t', 'b', NULL);
SELECT is(interactions_cron.cleanup()->'cleaned'->'expiredSuppressions', '0'::jsonb, 'NULL expiries are kept');
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
VALUES ('t', 'c', now() - interval '1 minute'), ('t', 'd', now() + interval '1 minute');
SELECT is(interactions_cron.cleanup()->'cleaned'->'expiredSuppressions', '1'::jsonb, 'one expired suppression deleted');
SELECT bag_eq($$SELECT contact_id FROM public.suppressions$$, $$VALUES ('a'), ('b'), ('d')$$, 'the others stay');

-- The 365-day boundary, in UTC days; only daily rows.
INSERT INTO public.interaction_summaries (tenant_id, period_type, period_start)
SELECT 't', p, (now() AT TIME ZONE 'UTC')::date - d
FROM unnest(ARRAY['daily', 'weekly']) p, unnest(ARRAY[365, 366]) d;
SELECT is(interactions_cron.cleanup()->'cleaned'->'oldDailySummaries', '1'::jsonb, 'only the 366-day-old daily row goes');
SET LOCAL interactions_cron.summary_retention_days = 364;
SELECT is(interactions_cron.cleanup()->'cleaned'->'oldDailySummaries', '1'::jsonb, 'the retention is a setting');
RESET interactions_cron.summary_retention_days;
SELECT is((SELECT count(*)::int FROM public.interaction_summaries WHERE period_type = 'weekly'), 2, 'weekly rows stay');

-- Partitions: skip paths are warnings.
CREATE TABLE public.plain_log (at timestamptz);
SET LOCAL interactions_cron.partitioned_tables = 'public.plain_log';
SELECT is(interactions_cron.cleanup()->'warnings'->>0, 'public.plain_log is not partitioned; partition maintenance skipped',
          'an unpartitioned table is skipped with a warning');
CREATE TABLE public.tap_events (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.tap_events_default PARTITION OF public.tap_events DEFAULT;
INSERT INTO public.tap_events VALUES (now() + interval '40 days');
SET LOCAL interactions_cron.partitioned_tables = 'public.tap_events';
SELECT matches(interactions_cron.cleanup()->'warnings'->>0, 'default partition "tap_events_default" would be violated',
               'a default partition holding a future row is a warning');
SELECT cmp_ok((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'public.tap_events'::regclass), '>=', 2,
              'the months without rows in the default partition are created');
SET LOCAL interactions_cron.partitioned_tables = 'public.missing_log';
SELECT throws_ok('SELECT interactions_cron.cleanup()', '42P01', NULL, 'a missing table is an error');
RESET interactions_cron.partitioned_tables;

-- Every successful call is in the run history with its result.
SELECT cmp_ok((SELECT count(*)::int FROM interactions_cron.job_runs WHERE job = 'cleanup' AND ok), '>=', 8,
              'each cleanup call is recorded');
SELECT ok((SELECT bool_and(result ? 'cleaned') FROM interactions_cron.job_runs WHERE job = 'cleanup' AND ok),
          'each record holds the full result');

-- export_status counts waiting rows, capped just past batch_size.
INSERT INTO public.tenants (id, name) VALUES ('s1', 'S1');
INSERT INTO public.interaction_history (id, tenant_id, created_at)
SELECT g, 's1', '2026-03-30 00:00:00+00'::timestamptz + g * interval '1 second' FROM generate_series(1, 7) g;
SELECT is((SELECT rows_waiting::int FROM interactions_cron.export_status WHERE tenant_id = 's1'), 7, 'all waiting rows counted');
SET LOCAL interactions_cron.batch_size = 5;
SELECT results_eq($$SELECT rows_waiting::int, backlog_exceeds_batch FROM interactions_cron.export_status WHERE tenant_id = 's1'$$,
                  $$VALUES (6, true)$$, 'the count stops just past batch_size');

SELECT * FROM finish();
ROLLBACK;
