-- Privileges: nothing is executable by PUBLIC, the settings that choose files
-- and relations are superuser-only, and malformed settings are refused.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (1, 'acme', '2026-03-30 10:00:00+00');

SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
FROM pg_proc p WHERE p.pronamespace = 'interactions_cron'::regnamespace ORDER BY 1;
SELECT has_table_privilege('public', 'interactions_cron.export_checkpoints', 'SELECT') AS public_can_read_checkpoints;

CREATE ROLE regress_ic_operator;
GRANT USAGE ON SCHEMA test_helpers TO regress_ic_operator;

-- Before the library is loaded a SET only makes a placeholder, which the
-- server discards (with a warning) when the library loads: the export still
-- writes to the superuser's directory.
SET ROLE regress_ic_operator;
SET interactions_cron.export_dir = '/tmp/elsewhere';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
RESET ROLE;

-- The documented grants let a role run the export: membership in the
-- operator role, and the right to read the platform tables.
GRANT interactions_cron_operator TO regress_ic_operator;
GRANT SELECT ON public.tenants, public.interaction_history TO regress_ic_operator;
SET ROLE regress_ic_operator;
SELECT tenant_id, exported, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT test_helpers.export_dir() <> '/tmp/elsewhere' AS export_dir_kept;

-- Once loaded, the settings that choose files and relations refuse other roles.
SELECT test_helpers.error_of($$SET interactions_cron.export_dir = '/tmp/elsewhere'$$);
SELECT test_helpers.error_of($$SET interactions_cron.history_table = 'public.tenants'$$);
SELECT test_helpers.error_of($$SET interactions_cron.tenants_table = 'public.tenants'$$);
SELECT test_helpers.error_of($$SET interactions_cron.watermark_margin = 0$$);
SELECT test_helpers.error_of($$SET interactions_cron.debug_fault = 'error_after_place'$$);
SELECT test_helpers.error_of($$SET interactions_cron.max_workers = 8$$);
SELECT test_helpers.error_of($$SET interactions_cron.batch_size = 5$$);
RESET ROLE;
-- The workers ran as the caller's role (which cannot log in); the run is
-- recorded as the session user's, the role that logged in.
SELECT run_by, ok FROM interactions_cron.job_runs ORDER BY id DESC LIMIT 1;

-- The export's own bookkeeping needs no grant, and callers cannot forge it:
-- an intent names files the next export deletes, as the server's OS user.
SET ROLE regress_ic_operator;
SELECT test_helpers.error_of($$INSERT INTO interactions_cron.export_intents
    (tenant_id, token, storage, local_root, files, temporary_files, row_count)
    VALUES ('acme', 'x', 'local', '/', ARRAY['etc/passwd'], '{}', 0)$$);
SELECT test_helpers.error_of($$SELECT 1 FROM interactions_cron.job_claims FOR UPDATE$$);
RESET ROLE;

-- Even an intent a superuser wrote by hand is refused when it names a file
-- outside the tenant's own directory or the spool: the tenant fails, and
-- nothing is deleted.
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (2, 'acme', '2026-03-30 11:00:00+00');
INSERT INTO interactions_cron.export_intents (tenant_id, token, storage, local_root, files, temporary_files, row_count)
VALUES ('acme', 'forged', 'local', test_helpers.export_dir(),
        ARRAY['exports/acme/interaction_history/../../other/interaction_history/x.json'], '{}', 0);
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
UPDATE interactions_cron.export_intents SET files = ARRAY['exports/other/interaction_history/x.json'];
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
UPDATE interactions_cron.export_intents SET files = '{}', temporary_files = ARRAY['global/pg_control'];
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT (pg_stat_file('global/pg_control', true)).size > 0 AS pg_control_kept;
UPDATE interactions_cron.export_intents SET temporary_files = ARRAY['.spool/somedb/other/.batch.tmp'];
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
DELETE FROM interactions_cron.export_intents;
SELECT count(*) AS files_in_superusers_dir FROM test_helpers.export_files();
SELECT pg_stat_file('/tmp/elsewhere', true) IS NULL AS nothing_elsewhere;

-- Malformed settings are refused when set.
SELECT test_helpers.error_of($$SET interactions_cron.export_dir = 'relative/path'$$);
SELECT test_helpers.error_of($$SET interactions_cron.tenants_table = 'tenants'$$);
SELECT test_helpers.error_of($$SET interactions_cron.history_table = 'a.b.c'$$);
SELECT test_helpers.error_of($$SET interactions_cron.batch_size = 0$$);
SELECT test_helpers.error_of($$SET interactions_cron.watermark_margin = 0$$);
SELECT test_helpers.error_of($$SET interactions_cron.max_workers = 0$$);
SELECT test_helpers.error_of($$SET interactions_cron.debug_fault = 'explode'$$);
SELECT test_helpers.error_of($$SET interactions_cron.no_such_setting = 1$$);

-- A table the settings name must exist and meet the data contract.
SET interactions_cron.history_table = 'public.missing_table';
SELECT interactions_cron.export_interactions();
RESET interactions_cron.history_table;
-- An id column without a btree order (json) cannot be a keyset's tie-breaker.
CREATE TABLE public.bad_history (id json, tenant_id text, created_at timestamptz);
SET interactions_cron.history_table = 'public.bad_history';
SELECT interactions_cron.export_interactions();
RESET interactions_cron.history_table;
DROP TABLE public.bad_history;
-- A security_invoker view would have its tables' grants and policies apply
-- to the caller, whom the jobs' reads as the view's owner would bypass.
CREATE VIEW public.invoker_tenants WITH (security_invoker = true) AS SELECT * FROM public.tenants;
SET interactions_cron.tenants_table = 'public.invoker_tenants';
SELECT interactions_cron.export_interactions();
RESET interactions_cron.tenants_table;
DROP VIEW public.invoker_tenants;

REVOKE ALL ON SCHEMA test_helpers FROM regress_ic_operator;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM regress_ic_operator;
DROP ROLE regress_ic_operator;
