-- pgTAP: the checkpoint table's shape and how the export moves it.
-- No surrounding transaction: the export's workers only see committed rows
-- and commit on their own, and a row this session locked would be skipped.
-- The data is removed at the end instead.
INSERT INTO public.tenants (id, name) VALUES ('tap', 'Tap');
INSERT INTO public.interaction_history (id, tenant_id, created_at)
VALUES (1, 'tap', '2026-03-30 01:00:00+00'), (2, 'tap', '2026-03-30 01:00:00+00'), (3, 'tap', '2026-03-30 02:00:00+00');
SELECT plan(27);

SELECT has_table('interactions_cron', 'export_checkpoints', 'the checkpoint table exists');
SELECT columns_are('interactions_cron', 'export_checkpoints', ARRAY[
    'tenant_id', 'last_created_at', 'last_id', 'status', 'last_error', 'attempts',
    'last_file', 'rows_exported', 'files_written', 'last_success_at', 'updated_at'],
    'the checkpoint table has the documented columns');
SELECT col_is_pk('interactions_cron', 'export_checkpoints', 'tenant_id', 'one checkpoint per tenant');
SELECT col_type_is('interactions_cron', 'export_checkpoints', 'last_created_at', 'timestamp with time zone', 'position instant is timestamptz');
SELECT col_type_is('interactions_cron', 'export_checkpoints', 'last_id', 'text', 'position id is the id''s text form, for any id type');
SELECT col_default_is('interactions_cron', 'export_checkpoints', 'last_created_at', '-infinity', 'a new checkpoint starts before every row');
SELECT col_not_null('interactions_cron', 'export_checkpoints', 'status', 'status is always set');
SELECT throws_ok($$INSERT INTO interactions_cron.export_checkpoints (tenant_id, status) VALUES ('x', 'running')$$,
                 '23514', NULL, 'status is ok or failed only');
SELECT throws_ok($$INSERT INTO interactions_cron.export_checkpoints (tenant_id, attempts) VALUES ('x', -1)$$,
                 '23514', NULL, 'attempts cannot be negative');
SELECT table_privs_are('interactions_cron', 'export_checkpoints', 'public', ARRAY[]::text[],
                       'PUBLIC has no access to checkpoints');
SELECT function_returns('interactions_cron', 'export_interactions', ARRAY['integer', 'text', 'boolean'], 'jsonb',
                        'export_interactions returns jsonb');
SELECT function_privs_are('interactions_cron', 'export_interactions', ARRAY['integer', 'text', 'boolean'],
                          'public', ARRAY[]::text[], 'PUBLIC cannot run the export');
SELECT function_privs_are('interactions_cron', 'reset_checkpoint', ARRAY['text', 'timestamp with time zone', 'boolean'],
                          'public', ARRAY[]::text[], 'PUBLIC cannot reset checkpoints');

-- Behaviour: success moves the position to the last row and clears failures.

SELECT is((interactions_cron.export_interactions(batch_size => 2)->>'totalExported')::int, 2, 'first batch of two');
SELECT results_eq($$SELECT last_created_at, last_id, status, attempts, rows_exported, files_written
                    FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap'$$,
                  $$VALUES ('2026-03-30 01:00:00+00'::timestamptz, '2'::text, 'ok'::text, 0, 2::bigint, 1::bigint)$$,
                  'the position is the last exported (created_at, id)');
SELECT is((SELECT last_success_at IS NOT NULL FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap'),
          true, 'last_success_at is recorded');

-- Failure keeps the position, records the error and counts attempts.
SET interactions_cron.debug_fault = 'error_after_place';
SELECT is((interactions_cron.export_interactions()->>'ok')::boolean, false, 'an injected failure makes the run not ok');
SELECT is((interactions_cron.export_interactions()->>'ok')::boolean, false, 'a second failure too');
SET interactions_cron.debug_fault = 'none';
SELECT results_eq($$SELECT last_id, status, attempts FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap'$$,
                  $$VALUES ('2'::text, 'failed'::text, 2)$$,
                  'a failed tenant keeps its position and counts its attempts');
SELECT matches((SELECT last_error FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap'),
               '^injected fault error_after_place for tenant "tap"', 'the error is recorded');

SELECT is((interactions_cron.export_interactions()->>'totalExported')::int, 1, 'the retry exports the remaining row');
SELECT results_eq($$SELECT last_id, status, attempts, last_error, rows_exported, files_written
                    FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap'$$,
                  $$VALUES ('3'::text, 'ok'::text, 0, NULL::text, 3::bigint, 2::bigint)$$,
                  'success clears the failure and adds to the totals');

-- reset_checkpoint rewinds and clears.
SELECT lives_ok($$SELECT interactions_cron.reset_checkpoint('tap', '2026-03-30 02:00:00+00')$$, 'reset to a past instant');
SELECT results_eq($$SELECT last_created_at, last_id FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap'$$,
                  $$VALUES ('2026-03-30 02:00:00+00'::timestamptz, NULL::text)$$,
                  'the position is the given instant, before every id');
SELECT is((interactions_cron.export_interactions()->>'totalExported')::int, 1, 'rows from that instant on come again');
SELECT throws_ok($$SELECT interactions_cron.reset_checkpoint('tap', '2030-01-01')$$, '22023', NULL,
                 'moving forward is refused');
SELECT throws_ok($$SELECT interactions_cron.reset_checkpoint('nobody')$$, '42704', NULL,
                 'an unknown tenant is refused');

SELECT * FROM finish();
DELETE FROM public.interaction_history WHERE tenant_id = 'tap';
DELETE FROM public.tenants WHERE id = 'tap';
DELETE FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tap';
