-- pgTAP: the extension's objects as a catalog contract (what pg_regress,
-- which tests behaviour, does not check): tables, columns, types, defaults,
-- constraints, the view, and each function's signature, language,
-- volatility, security and pinned search_path.
BEGIN;
SELECT plan(43);

SELECT has_extension('interactions_cron', 'the extension is installed');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'), '1.2', 'at version 1.2');
SELECT tables_are('interactions_cron', ARRAY['export_checkpoints', 'job_runs', 'export_intents', 'job_claims',
                                             'job_run_totals', 'cleanup_totals', 'export_histories'],
                  'the extension owns seven tables');
-- The histories exported in, each with the random id the files' origin names.
SELECT columns_are('interactions_cron', 'export_histories',
                   ARRAY['lake_epoch', 'origin_prefix', 'history_id', 'first_export_at'],
                   'the history table has the documented columns');
-- An id is drawn once per history and origin prefix, and names one history.
SELECT col_is_pk('interactions_cron', 'export_histories', 'history_id', 'one row per history id');
SELECT col_is_unique('interactions_cron', 'export_histories', ARRAY['lake_epoch', 'origin_prefix'],
                     'one id per history and origin prefix');
SELECT views_are('interactions_cron', ARRAY['export_status'], 'and one view');

-- Checkpoints: one per tenant, the position's id as text (any id type).
SELECT columns_are('interactions_cron', 'export_checkpoints', ARRAY[
    'tenant_id', 'last_created_at', 'last_id', 'status', 'last_error', 'attempts',
    'last_file', 'rows_exported', 'files_written', 'last_success_at', 'updated_at', 'lake_epoch',
    'last_failure_at', 'position_xid', 'adopted_from'],
    'the checkpoint table has the documented columns');
SELECT col_type_is('interactions_cron', 'export_checkpoints', 'position_xid', 'xid8',
                   'the transaction that set the position is a 64-bit id, which never wraps');
SELECT col_is_pk('interactions_cron', 'export_checkpoints', 'tenant_id', 'one checkpoint per tenant');
SELECT col_type_is('interactions_cron', 'export_checkpoints', 'last_created_at', 'timestamp with time zone',
                   'the position instant is timestamptz');
SELECT col_type_is('interactions_cron', 'export_checkpoints', 'last_id', 'text',
                   'the position id is its text form, for any id type');
SELECT col_is_null('interactions_cron', 'export_checkpoints', 'last_id', 'a NULL id stands before every id');
SELECT col_default_is('interactions_cron', 'export_checkpoints', 'last_created_at', '-infinity',
                      'a new checkpoint starts before every row');
SELECT throws_ok($$INSERT INTO interactions_cron.export_checkpoints (tenant_id, status) VALUES ('x', 'running')$$,
                 '23514', NULL, 'status is ok, failed or released only');
SELECT throws_ok($$INSERT INTO interactions_cron.export_checkpoints (tenant_id, attempts) VALUES ('x', -1)$$,
                 '23514', NULL, 'attempts cannot be negative');
SELECT throws_ok($$INSERT INTO interactions_cron.export_checkpoints (tenant_id, adopted_from) VALUES ('x', ARRAY['1/2/3/not-an-id'])$$,
                 '23514', NULL, 'adopted_from holds origins: three numbers and a history id each');

-- Run history.
SELECT col_is_pk('interactions_cron', 'job_runs', 'id', 'runs have an id');
SELECT col_default_is('interactions_cron', 'job_runs', 'run_by', 'SESSION_USER', 'run_by defaults to the session user');
SELECT throws_ok($$INSERT INTO interactions_cron.job_runs (job, started_at, finished_at, ok) VALUES ('vacuum', now(), now(), true)$$,
                 '23514', NULL, 'only the three jobs are recorded');

-- Intents and job claims.
SELECT col_is_pk('interactions_cron', 'export_intents', 'tenant_id', 'at most one unfinished batch per tenant');
SELECT col_type_is('interactions_cron', 'export_intents', 'files', 'text[]', 'an intent names its files');
SELECT results_eq($$SELECT job FROM interactions_cron.job_claims$$, $$VALUES ('cleanup')$$,
                  'cleanup has its claim row');

-- The totals the metrics report: one counter row per job and outcome, one
-- per kind of cleanup work; a failed checkpoint records when.
SELECT col_is_pk('interactions_cron', 'job_run_totals', ARRAY['job', 'outcome'], 'runs are counted per job and outcome');
SELECT throws_ok($$INSERT INTO interactions_cron.job_run_totals VALUES ('export', 'maybe', 1, now(), now())$$,
                 '23514', NULL, 'an outcome is ok, failed or skipped');
SELECT throws_ok($$INSERT INTO interactions_cron.cleanup_totals VALUES ('vacuumed', 1)$$,
                 '23514', NULL, 'cleanup counts only its four kinds of work');
SELECT trigger_is('interactions_cron', 'export_checkpoints', 'note_checkpoint_failure',
                  'interactions_cron', 'note_checkpoint_failure', 'a failed checkpoint notes when it failed');

-- The view over the C status function.
SELECT columns_are('interactions_cron', 'export_status', ARRAY[
    'tenant_id', 'tenant_name', 'status', 'last_created_at', 'last_id', 'attempts', 'last_error',
    'last_file', 'last_success_at', 'rows_exported', 'rows_waiting', 'backlog_exceeds_batch',
    'oldest_waiting_at', 'lag'], 'export_status has the documented columns');

-- Functions: signatures, languages, and a pinned search_path for every one.
SELECT functions_are('interactions_cron', ARRAY[
    'export_interactions', 'cleanup', 'reset_checkpoint', 'export_status_rows',
    'tenant_state', 'adopt_tenant_state', 'require_pg_cron', 'schedule', 'unschedule',
    'metrics', 'note_checkpoint_failure'],
    'the extension has eleven functions');
SELECT function_returns('interactions_cron', 'export_interactions', ARRAY['integer', 'text', 'boolean', 'interval'], 'jsonb',
                        'export_interactions(batch_size, tenant_id, dry_run, max_runtime) returns jsonb');
SELECT function_returns('interactions_cron', 'cleanup', ARRAY[]::text[], 'jsonb', 'cleanup() returns jsonb');
SELECT function_returns('interactions_cron', 'reset_checkpoint', ARRAY['text', 'timestamp with time zone', 'boolean'],
                        'void', 'reset_checkpoint(tenant_id, since, force) returns void');
SELECT function_returns('interactions_cron', 'export_status_rows', ARRAY[]::text[], 'setof record',
                        'export_status_rows() returns a set');
SELECT function_returns('interactions_cron', 'metrics', ARRAY[]::text[], 'setof record',
                        'metrics() returns a set of samples');
SELECT function_lang_is('interactions_cron', 'metrics', ARRAY[]::text[], 'c',
                        'the metrics are C (they read the platform tables as their owners)');
SELECT function_lang_is('interactions_cron', 'export_interactions', ARRAY['integer', 'text', 'boolean', 'interval'], 'c',
                        'the export is C');
SELECT function_lang_is('interactions_cron', 'cleanup', ARRAY[]::text[], 'c', 'cleanup is C');
SELECT function_lang_is('interactions_cron', 'reset_checkpoint', ARRAY['text', 'timestamp with time zone', 'boolean'], 'c',
                        'reset_checkpoint is C');
SELECT function_lang_is('interactions_cron', 'export_status_rows', ARRAY[]::text[], 'c',
                        'the status is C (it reads the platform tables as their owners)');
SELECT volatility_is('interactions_cron', 'export_interactions', ARRAY['integer', 'text', 'boolean', 'interval'], 'volatile',
                     'the export is volatile');
SELECT isnt_definer('interactions_cron', 'export_interactions', ARRAY['integer', 'text', 'boolean', 'interval'],
                    'the export runs as its caller (it acts as table owners itself, after checking the caller)');
SELECT is((SELECT count(*)::int FROM pg_proc p
           WHERE p.pronamespace = 'interactions_cron'::regnamespace AND p.prosecdef), 0,
          'no function is SECURITY DEFINER');
SELECT is((SELECT count(*)::int FROM pg_proc p
           WHERE p.pronamespace = 'interactions_cron'::regnamespace
           AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'), 0,
          'every function pins search_path to pg_catalog, pg_temp');

SELECT * FROM finish();
ROLLBACK;
