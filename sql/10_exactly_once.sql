-- Exactly once through what 1.0 got wrong: each case below was reproduced
-- against 1.0 (one run transaction, advisory locks, millisecond names).
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'acme', '2026-03-30 10:00:00+00'), (2, 'acme', '2026-03-30 11:00:00+00'),
    (3, 'acme', '2026-03-31 09:00:00+00');

-- A tenant fails after its files were placed; the retry runs with another
-- compression.  The failed batch's files are gone, so no row is in a .json
-- and a .json.gz at once.
SET interactions_cron.debug_fault = 'error_after_place';
SELECT tenant_id, exported, files, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
RESET interactions_cron.debug_fault;
SELECT f FROM test_helpers.export_files() f;
SELECT count(*) AS outstanding_intents FROM interactions_cron.export_intents;
SET interactions_cron.compression = 'gzip';
SELECT tenant_id, exported, files FROM test_helpers.outcomes(interactions_cron.export_interactions());
RESET interactions_cron.compression;
SELECT f FROM test_helpers.export_files() f;

-- The same, when the failed batch's first row is deleted before the retry
-- (a GDPR delete): the retry names its file after another row, and the
-- deleted row is in no file.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'acme', '2026-03-30 10:00:00+00'), (2, 'acme', '2026-03-30 11:00:00+00');
SET interactions_cron.debug_fault = 'error_between_files';
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (3, 'acme', '2026-03-31 09:00:00+00');
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
RESET interactions_cron.debug_fault;
SELECT f FROM test_helpers.export_files() f;
DELETE FROM interaction_history WHERE id = 1;
SELECT tenant_id, exported, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f;
SELECT * FROM test_helpers.rows_not_exported_once();
SELECT count(*) AS deleted_row_exported FROM test_helpers.exported_rows() WHERE (doc->>'id')::bigint = 1;

-- Two batches whose first rows share the millisecond but not the
-- microsecond, and share an id: (id 5, .000100), (6, .000200), (5, .000300).
-- Each batch gets its own name; none overwrites another.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('micro', 'Micro');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (5, 'micro', '2026-03-30 10:00:00.0001+00'), (6, 'micro', '2026-03-30 10:00:00.0002+00'),
    (5, 'micro', '2026-03-30 10:00:00.0003+00');
SELECT (interactions_cron.export_interactions(batch_size => 1)->>'totalExported') AS run_1,
       (interactions_cron.export_interactions(batch_size => 1)->>'totalExported') AS run_2,
       (interactions_cron.export_interactions(batch_size => 1)->>'totalExported') AS run_3;
SELECT f FROM test_helpers.export_files() f;
SELECT doc->>'id' AS id, doc->>'created_at' AS created_at FROM test_helpers.exported_rows() ORDER BY 2;

-- Tenant ids that Spark's and Hive's listings would skip as hidden.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('_staging', 'Underscore'), ('.dotted', 'Dot');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, '_staging', '2026-03-30 10:00:00+00'), (2, '.dotted', '2026-03-30 10:00:00+00');
SELECT tenant_id, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;

-- A row that no day partition can hold fails its tenant, naming the row, on
-- every run, until a forced reset moves the checkpoint past it; the reset is
-- recorded.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('poison', 'Poison'), ('fine', 'Fine');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'poison', '-infinity'), (2, 'poison', '2026-03-30 10:00:00+00'),
    (3, 'fine', '2026-03-30 10:00:00+00');
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('poison', '2000-01-01')$$);
SELECT interactions_cron.reset_checkpoint('poison', '2000-01-01', force => true);
SELECT job, ok, result->>'tenantId' AS tenant, result->>'from' AS moved_from, result->>'to' AS moved_to,
       result->'force' AS force
FROM interactions_cron.job_runs WHERE job = 'reset_checkpoint' ORDER BY id DESC LIMIT 1;
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT tenant_id, status, attempts, last_id FROM interactions_cron.export_checkpoints ORDER BY 1;

-- The workers run with the caller's session settings and as the caller's
-- role (which cannot log in): a session-only history_table and debug_fault
-- reach them.  They read that table as its owner, whatever the caller: the
-- view shows current_user.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'acme', '2026-03-30 10:00:00+00'), (2, 'beta', '2026-03-30 10:00:00+00');
CREATE VIEW public.history_seen_by AS SELECT h.*, current_user AS seen_by FROM public.interaction_history h;
CREATE ROLE regress_ic_history_owner;
GRANT SELECT ON public.interaction_history TO regress_ic_history_owner;
ALTER VIEW public.history_seen_by OWNER TO regress_ic_history_owner;
CREATE ROLE regress_ic_caller IN ROLE interactions_cron_operator;
GRANT USAGE ON SCHEMA test_helpers TO regress_ic_caller;
GRANT SELECT ON public.tenants, public.history_seen_by TO regress_ic_caller;
SET interactions_cron.history_table = 'public.history_seen_by';
SET interactions_cron.debug_fault = 'error_before_place';
SET ROLE regress_ic_caller;
SELECT r->'workers' AS workers, t.tenant_id, t.error
FROM interactions_cron.export_interactions() r, test_helpers.outcomes(r) t ORDER BY 2;
RESET ROLE;
RESET interactions_cron.debug_fault;
SET ROLE regress_ic_caller;
SELECT tenant_id, exported, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
RESET ROLE;
RESET interactions_cron.history_table;
SELECT doc->>'id' AS id, doc->>'seen_by' AS seen_by FROM test_helpers.exported_rows() ORDER BY 1;
SELECT tenant_id, status, attempts FROM interactions_cron.export_checkpoints ORDER BY 1;
DROP VIEW public.history_seen_by;
REVOKE ALL ON SCHEMA test_helpers FROM regress_ic_caller;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM regress_ic_caller, regress_ic_history_owner;
DROP ROLE regress_ic_caller, regress_ic_history_owner;

-- With export_dir empty, files go under the data directory, in a folder of
-- this database's own: tenant ids are only unique within one database.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (1, 'acme', '2026-03-30 10:00:00+00');
SET interactions_cron.export_dir = '';
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT pg_ls_dir('interactions_cron/' || current_database() || '/exports/acme/interaction_history/year=2026/month=03/day=30') AS file_in_database_folder;
DO $$ BEGIN
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L',
                   'rm -rf ''' || current_setting('data_directory') || '/interactions_cron/' || current_database() || '''');
END $$;
RESET interactions_cron.export_dir;
