-- A failing tenant is rolled back alone, marked failed with its error, and
-- retried from the same position; the others export.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('good', 'Good'), ('locked', 'Locked');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'good', '2026-03-30 10:00:00+00'),
    (2, 'locked', '2026-03-30 10:00:00+00'),
    (3, 'locked', '2026-03-30 11:00:00+00');

-- The locked tenant's directory cannot be written.
SELECT test_helpers.remove_exports();
DO $$
BEGIN
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L',
        format('mkdir -p ''%s/exports/locked'' && chmod 500 ''%s/exports/locked''',
               test_helpers.export_dir(), test_helpers.export_dir()));
END $$;

SELECT r->'ok' AS ok, r->'totalExported' AS total FROM interactions_cron.export_interactions() r;
SELECT tenant_id, exported, files, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT tenant_id, status, attempts, last_id, test_helpers.masked(last_error) AS last_error
FROM interactions_cron.export_checkpoints ORDER BY 1;
SELECT f FROM test_helpers.export_files() f;

-- Once the directory is writable again, the retry exports the same rows.
DO $$
BEGIN
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L',
        format('chmod 700 ''%s/exports/locked''', test_helpers.export_dir()));
END $$;
SELECT tenant_id, exported, files, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT tenant_id, status, attempts, last_id, last_error FROM interactions_cron.export_checkpoints ORDER BY 1;
SELECT * FROM test_helpers.rows_not_exported_once();

-- A failure after the file reached its final name but before the checkpoint
-- moved: the file is removed again, the checkpoint stays, and the retry
-- writes the same name.
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (4, 'good', '2026-03-30 12:00:00+00'), (5, 'good', '2026-03-30 12:30:00+00');
SET interactions_cron.debug_fault = 'error_after_place';
SELECT tenant_id, exported, files, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
RESET interactions_cron.debug_fault;
SELECT tenant_id, status, attempts, last_id FROM interactions_cron.export_checkpoints ORDER BY 1;
SELECT f FROM test_helpers.export_files() f;
SELECT count(*) AS outstanding_intents FROM interactions_cron.export_intents;
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT f FROM test_helpers.export_files() f;
SELECT * FROM test_helpers.rows_not_exported_once();

-- The caller's transaction rolling back does not undo what the workers
-- committed: the rows stay exported once, and the next run has nothing to do.
-- Its job_runs row stays too: the run is recorded in a transaction of its
-- own, since its files and checkpoints outlive the caller's transaction.
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (6, 'good', '2026-03-30 13:00:00+00');
SELECT max(id) AS runs_before FROM interactions_cron.job_runs \gset
BEGIN;
SELECT tenant_id, exported, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
ROLLBACK;
SELECT job, ok, (result->>'totalExported')::int AS exported, run_by = session_user AS run_by_caller
FROM interactions_cron.job_runs WHERE id > :runs_before ORDER BY id;
SELECT tenant_id, exported, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT count(*) AS files FROM test_helpers.export_files() f;
SELECT * FROM test_helpers.rows_not_exported_once();
