-- interactions_cron 1.1 -> 1.2.  CREATE EXTENSION runs 1.0's script and the
-- updates after it, so a fresh install and an upgraded one are built by the
-- same statements.  The 1.2 library works with 1.1's objects too.
\echo Use "ALTER EXTENSION interactions_cron UPDATE TO '1.2'" to load this file. \quit

-- A checkpoint may be released: tenant_state(release => true) handed the
-- tenant's state over to another database.  The row stays as a marker, so
-- that no export here claims the tenant again (a call that listed it before
-- the move, or one after the filter lets it in again) until a state is
-- adopted here; 1.1 deleted it, and the next claim recreated it at the
-- beginning.
ALTER TABLE interactions_cron.export_checkpoints
    DROP CONSTRAINT export_checkpoints_status_check,
    ADD CONSTRAINT export_checkpoints_status_check CHECK (status IN ('ok', 'failed', 'released'));
COMMENT ON COLUMN interactions_cron.export_checkpoints.status IS
    'ok, failed (last_error says why), or released: the tenant''s state was handed over to another database';
