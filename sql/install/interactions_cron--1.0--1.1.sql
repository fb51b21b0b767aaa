-- interactions_cron 1.0 -> 1.1: per-tenant transactions on background
-- workers, intent records, row-lock claims, a recorded and forceable
-- reset_checkpoint.  CREATE EXTENSION runs 1.0's script and then this one,
-- so a fresh install and an upgraded one are built by the same statements.
\echo Use "ALTER EXTENSION interactions_cron UPDATE TO '1.1'" to load this file. \quit

-- The files a tenant's batch is about to place, committed before any is
-- placed and deleted with the checkpoint's move; an intent that outlives its
-- batch names the files the next export of the tenant removes first.
CREATE TABLE interactions_cron.export_intents (
    tenant_id        text PRIMARY KEY,
    token            text NOT NULL,
    storage          text NOT NULL CHECK (storage IN ('local', 's3')),
    local_root       text NOT NULL,
    s3_endpoint      text,
    s3_bucket        text,
    s3_prefix        text,
    files            text[] NOT NULL,
    temporary_files  text[] NOT NULL,
    row_count        bigint NOT NULL CHECK (row_count >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((storage = 's3') = (s3_bucket IS NOT NULL))
);
COMMENT ON TABLE interactions_cron.export_intents IS
    'Files of each tenant''s unfinished export batch: removed before the tenant is exported again';
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.export_intents', '');
REVOKE ALL ON interactions_cron.export_intents FROM PUBLIC;

-- One row per job that runs one at a time; a run claims its row with
-- SELECT ... FOR UPDATE SKIP LOCKED (only roles that may update the table can).
CREATE TABLE interactions_cron.job_claims (
    job  text PRIMARY KEY CHECK (job IN ('cleanup'))
);
INSERT INTO interactions_cron.job_claims (job) VALUES ('cleanup');
COMMENT ON TABLE interactions_cron.job_claims IS
    'Rows that jobs running one at a time lock while they run';
REVOKE ALL ON interactions_cron.job_claims FROM PUBLIC;

-- Resets are recorded in the run history too.
ALTER TABLE interactions_cron.job_runs DROP CONSTRAINT job_runs_job_check;
ALTER TABLE interactions_cron.job_runs ADD CONSTRAINT job_runs_job_check
    CHECK (job IN ('export', 'cleanup', 'reset_checkpoint', 'adopt_tenant_state'));

-- pg_dump keeps an extension's sequence state only when it is marked: without
-- this, ids restart at 1 after a restore and collide with the dumped rows.
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.job_runs_id_seq', '');

-- reset_checkpoint gains force.  A new signature is a new function, so the
-- grants a DBA gave on the old one are carried over to it.
CREATE FUNCTION interactions_cron.reset_checkpoint(
    tenant_id text,
    since timestamptz,
    force boolean)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS 'MODULE_PATHNAME', 'reset_checkpoint';
REVOKE ALL ON FUNCTION interactions_cron.reset_checkpoint(text, timestamptz, boolean) FROM PUBLIC;
DO $$
DECLARE
    grant_entry record;
BEGIN
    FOR grant_entry IN
        SELECT a.grantee, a.is_grantable
        FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
        WHERE p.oid = 'interactions_cron.reset_checkpoint(text, timestamptz)'::pg_catalog.regprocedure
          AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0
    LOOP
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION interactions_cron.reset_checkpoint(text, timestamptz, boolean) TO %I%s',
            pg_catalog.pg_get_userbyid(grant_entry.grantee),
            CASE WHEN grant_entry.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
DROP FUNCTION interactions_cron.reset_checkpoint(text, timestamptz);
-- Defaults can only be added once the old two-argument function is gone.
CREATE OR REPLACE FUNCTION interactions_cron.reset_checkpoint(
    tenant_id text,
    since timestamptz DEFAULT NULL,
    force boolean DEFAULT false)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS 'MODULE_PATHNAME', 'reset_checkpoint';
COMMENT ON FUNCTION interactions_cron.reset_checkpoint(text, timestamptz, boolean) IS
    'Move a tenant''s export checkpoint back to since (NULL: the beginning) to replay its rows; with force, also forward past rows that cannot be exported';

-- The run history records who logged in: a role reached by SET ROLE cannot
-- pass its runs off as another's.  The functions always set run_by; this
-- default only says what it means.
ALTER TABLE interactions_cron.job_runs ALTER COLUMN run_by SET DEFAULT session_user;

-- export_status reads the platform's tables as their owners (as the jobs do),
-- in C: 1.0's PL/pgSQL version ran a view or function behind them with the
-- reader's rights, a superuser's when pg_cron or a DBA read the status.  Its
-- last_id is text now, as in export_checkpoints, so view and function are
-- made again.
DROP VIEW interactions_cron.export_status;
DROP FUNCTION interactions_cron.export_status_rows();
CREATE FUNCTION interactions_cron.export_status_rows()
RETURNS TABLE (
    tenant_id text, tenant_name text, status text,
    last_created_at timestamptz, last_id text, attempts integer, last_error text,
    last_file text, last_success_at timestamptz, rows_exported bigint,
    rows_waiting bigint, backlog_exceeds_batch boolean, oldest_waiting_at timestamptz)
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'export_status_rows';
REVOKE ALL ON FUNCTION interactions_cron.export_status_rows() FROM PUBLIC;
CREATE VIEW interactions_cron.export_status AS
SELECT s.*, now() - s.oldest_waiting_at AS lag
FROM interactions_cron.export_status_rows() s;
COMMENT ON VIEW interactions_cron.export_status IS
    'Per active tenant: checkpoint, status, attempts, last error and file, last success, and rows waiting';
REVOKE ALL ON interactions_cron.export_status FROM PUBLIC;

-- A tenant's export state travels with the tenant to another database or
-- shard sharing the lake (README, "Moving a tenant").
CREATE FUNCTION interactions_cron.tenant_state(tenant_id text, release boolean DEFAULT false)
RETURNS jsonb
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'tenant_state';
COMMENT ON FUNCTION interactions_cron.tenant_state(text, boolean) IS
    'The tenant''s checkpoint and unfinished batch as JSON, the tenant claimed until the end of the transaction; release deletes them here';
REVOKE ALL ON FUNCTION interactions_cron.tenant_state(text, boolean) FROM PUBLIC;

CREATE FUNCTION interactions_cron.adopt_tenant_state(state jsonb, force boolean DEFAULT false)
RETURNS jsonb
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'adopt_tenant_state';
COMMENT ON FUNCTION interactions_cron.adopt_tenant_state(jsonb, boolean) IS
    'Install a tenant''s state taken with tenant_state() in another database; recorded in job_runs';
-- Neither is the operator's: moving a tenant is the DBA's.  An adopted
-- intent names lake files that the next export deletes, a released state
-- leaves the source without the tenant's checkpoint, and a state shows
-- where the lake is (the S3 endpoint, bucket and prefix).
REVOKE ALL ON FUNCTION interactions_cron.adopt_tenant_state(jsonb, boolean) FROM PUBLIC;

-- A role for operators.  Its members run both jobs, read the status and the
-- history, and replay tenants; they cannot write job_runs or
-- export_checkpoints themselves: the functions write them as the extension's
-- owner, so the history is an audit trail and no checkpoint moves unrecorded.
-- Roles belong to the cluster: a second database with the extension, or a
-- DBA who made the role first, finds it there and it is used as it is.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'interactions_cron_operator') THEN
        CREATE ROLE interactions_cron_operator NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA interactions_cron TO interactions_cron_operator;
GRANT EXECUTE ON FUNCTION
    interactions_cron.export_interactions(integer, text, boolean),
    interactions_cron.cleanup(),
    interactions_cron.reset_checkpoint(text, timestamptz, boolean),
    interactions_cron.export_status_rows(),
    interactions_cron.require_pg_cron(),
    interactions_cron.schedule(text, text),
    interactions_cron.unschedule()
    TO interactions_cron_operator;
GRANT SELECT ON interactions_cron.job_runs, interactions_cron.export_checkpoints,
    interactions_cron.export_status
    TO interactions_cron_operator;

-- A checkpoint's last id is kept as text: the history's id column may be of
-- any type with a btree order (integers, numeric, text, uuid), and the export
-- converts the text back to that type.  NULL stands before every id of
-- last_created_at: 1.0 wrote the smallest bigint for that (no checkpoint yet,
-- or reset_checkpoint).
ALTER TABLE interactions_cron.export_checkpoints
    ALTER COLUMN last_id DROP DEFAULT,
    ALTER COLUMN last_id DROP NOT NULL,
    ALTER COLUMN last_id TYPE text
        USING CASE WHEN last_id = -9223372036854775808 THEN NULL ELSE last_id::text END;
COMMENT ON COLUMN interactions_cron.export_checkpoints.last_id IS
    'Text form of the last exported row''s id; NULL: every row from last_created_at on is still to export';

-- The lake history a checkpoint belongs to: the cluster's system identifier
-- and timeline when the tenant last exported.  A checkpoint recorded in
-- another history (after a failover that lost commits, a restore, a
-- reinstall; NULL: none or 1.0's) has the tenant's files named past it
-- removed before it exports again, since no intent of this database names
-- them.
ALTER TABLE interactions_cron.export_checkpoints ADD COLUMN lake_epoch text;
COMMENT ON COLUMN interactions_cron.export_checkpoints.lake_epoch IS
    'System identifier/timeline of the history the checkpoint was recorded in';
