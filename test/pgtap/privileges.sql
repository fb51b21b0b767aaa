-- pgTAP: who may do what, object by object: nothing for PUBLIC, and the
-- operator role's exact grants (run the jobs, read the status and history,
-- never write them).
BEGIN;
SELECT plan(25);

SELECT has_role('interactions_cron_operator', 'the operator role exists');
SELECT isnt_superuser('interactions_cron_operator', 'it is not a superuser');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'interactions_cron_operator'), false, 'it cannot log in');

-- PUBLIC: no table, view or function.
SELECT table_privs_are('interactions_cron', t, 'public', ARRAY[]::text[], 'PUBLIC has no access to ' || t)
FROM unnest(ARRAY['export_checkpoints', 'job_runs', 'export_intents', 'job_claims', 'export_status',
                  'job_run_totals', 'cleanup_totals', 'export_histories']) t;
SELECT is((SELECT count(*)::int FROM pg_proc p
           WHERE p.pronamespace = 'interactions_cron'::regnamespace
           AND has_function_privilege('public', p.oid, 'EXECUTE')), 0,
          'PUBLIC can execute no function of the extension');

-- The operator: reads history, checkpoints and status; writes nothing itself.
SELECT table_privs_are('interactions_cron', 'job_runs', 'interactions_cron_operator', ARRAY['SELECT'],
                       'the operator reads the run history only');
SELECT table_privs_are('interactions_cron', 'export_checkpoints', 'interactions_cron_operator', ARRAY['SELECT'],
                       'the operator reads the checkpoints only');
SELECT table_privs_are('interactions_cron', 'export_status', 'interactions_cron_operator', ARRAY['SELECT'],
                       'the operator reads the status');
SELECT table_privs_are('interactions_cron', 'job_run_totals', 'interactions_cron_operator', ARRAY['SELECT'],
                       'the operator reads the run totals only');
SELECT table_privs_are('interactions_cron', 'cleanup_totals', 'interactions_cron_operator', ARRAY['SELECT'],
                       'the operator reads the cleanup totals only');
SELECT table_privs_are('interactions_cron', 'export_intents', 'interactions_cron_operator', ARRAY[]::text[],
                       'the operator has no access to intents');
SELECT table_privs_are('interactions_cron', 'job_claims', 'interactions_cron_operator', ARRAY[]::text[],
                       'the operator has no access to job claims');
SELECT table_privs_are('interactions_cron', 'export_histories', 'interactions_cron_operator', ARRAY[]::text[],
                       'the operator has no access to the histories');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
           WHERE p.pronamespace = 'interactions_cron'::regnamespace
           AND NOT has_function_privilege('interactions_cron_operator', p.oid, 'EXECUTE')),
          ARRAY['adopt_tenant_state', 'note_checkpoint_failure', 'tenant_state'],
          'the operator may execute every function but the tenant moves, which are the DBA''s, and a trigger''s');
SELECT ok(has_schema_privilege('interactions_cron_operator', 'interactions_cron', 'USAGE'),
          'the operator may use the schema');
SELECT ok(NOT has_schema_privilege('interactions_cron_operator', 'interactions_cron', 'CREATE'),
          'but not create objects in it');
SELECT ok(NOT has_sequence_privilege('interactions_cron_operator', 'interactions_cron.job_runs_id_seq', 'USAGE,UPDATE'),
          'the operator cannot draw run ids');
SELECT is((SELECT count(*)::int FROM pg_class c
           WHERE c.relnamespace = 'interactions_cron'::regnamespace AND c.relkind IN ('r', 'p')
           AND has_table_privilege('interactions_cron_operator', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE')), 0,
          'the operator can write no table of the extension');

SELECT * FROM finish();
ROLLBACK;
