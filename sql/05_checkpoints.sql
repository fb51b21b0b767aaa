-- Tenant selection, dry runs, replays with reset_checkpoint, and the
-- isolation level the watermark depends on.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name, status) VALUES ('acme', 'Acme', 'active'), ('idle', 'Idle', 'suspended');
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, 'acme', timestamptz '2026-03-30 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 6) g;

-- Unknown and inactive tenants are clear errors.
SELECT test_helpers.error_of($$SELECT interactions_cron.export_interactions(tenant_id => 'nobody')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.export_interactions(tenant_id => 'idle')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('nobody')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint(NULL)$$);

-- A dry run reports what would be written, and writes and moves nothing.
SELECT r->'dryRun' AS dry_run, r->'totalExported' AS total
FROM interactions_cron.export_interactions(dry_run => true) r;
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions(dry_run => true));
SELECT count(*) AS files_after_dry_run FROM test_helpers.export_files();
SELECT count(*) AS checkpoints_after_dry_run FROM interactions_cron.export_checkpoints;

-- The real run writes exactly the files the dry run announced.
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f;

-- Moving a checkpoint forward would skip rows: refused.
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('acme', '2027-01-01')$$);

-- Replay from 03:00: rows from then on are written again, into a file named
-- after its first row.  A replay is a deliberate re-export: the earlier file
-- still holds those rows, which is why the README says to remove a tenant's
-- files from `since` on before replaying.
SELECT interactions_cron.reset_checkpoint('acme', '2026-03-30 03:00:00+00');
SELECT last_created_at AT TIME ZONE 'UTC' AS position, last_id, status, attempts
FROM interactions_cron.export_checkpoints WHERE tenant_id = 'acme';
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());

-- Replay from the beginning writes the same rows under the same name: a
-- placed file never replaces another, so the replay fails the tenant while
-- the first export's file is there (it stays as it was), and writes it
-- again once the file is removed, as the README says to.
SELECT test_helpers.remove_exports();
SELECT interactions_cron.reset_checkpoint('acme');
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT interactions_cron.reset_checkpoint('acme');
SELECT r->'tenants'->0->>'error' AS replay_into_a_taken_name
FROM interactions_cron.export_interactions() r;
SELECT f FROM test_helpers.export_files() f;
SELECT count(*) AS intents FROM interactions_cron.export_intents;
SELECT test_helpers.remove_exports();
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f;
SELECT * FROM test_helpers.rows_not_exported_once();

-- The watermark is only safe at READ COMMITTED.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT interactions_cron.export_interactions();
ROLLBACK;
