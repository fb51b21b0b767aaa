-- interactions_cron 1.1 -> 1.2.  CREATE EXTENSION runs 1.0's script and the
-- updates after it, so a fresh install and an upgraded one are built by the
-- same statements.  The 1.2 library works with 1.1's objects too.  Each
-- section below stands on its own.
\echo Use "ALTER EXTENSION interactions_cron UPDATE TO '1.2'" to load this file. \quit

---------------------------------------------------------------------------
-- Metrics (issue 23): the numbers a monitoring system scrapes, from one
-- function that the HTTP shim's /metrics reads and a DBA's postgres_exporter
-- or sql_exporter can read too (doc/monitoring.md, "Metrics").
---------------------------------------------------------------------------

-- Counters of the runs of each job by outcome, which cleanup's pruning of
-- job_runs must not make go down (a falling counter reads as a reset to a
-- monitoring system), with when the last of each outcome ran.  The
-- functions add to them, as the extension's owner, with each job_runs row;
-- an update from 1.1 starts them from the history kept so far.
CREATE TABLE interactions_cron.job_run_totals (
    job               text NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    runs              bigint NOT NULL CHECK (runs >= 0),
    last_started_at   timestamptz NOT NULL,
    last_finished_at  timestamptz NOT NULL,
    PRIMARY KEY (job, outcome)
);
COMMENT ON TABLE interactions_cron.job_run_totals IS
    'Runs of each job by outcome (ok, failed, skipped) since the extension was installed, and the last of each';
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.job_run_totals', '');
REVOKE ALL ON interactions_cron.job_run_totals FROM PUBLIC;
INSERT INTO interactions_cron.job_run_totals (job, outcome, runs, last_started_at, last_finished_at)
SELECT r.job, r.outcome, pg_catalog.count(*),
       (pg_catalog.array_agg(r.started_at ORDER BY r.finished_at DESC))[1], pg_catalog.max(r.finished_at)
FROM (SELECT job, started_at, finished_at,
             CASE WHEN NOT ok THEN 'failed' WHEN result->>'status' = 'skipped' THEN 'skipped' ELSE 'ok' END
             AS outcome
      FROM interactions_cron.job_runs) r
GROUP BY r.job, r.outcome;

-- What the successful cleanups have done, summed: rows deleted by kind, and
-- partitions ensured.
CREATE TABLE interactions_cron.cleanup_totals (
    kind   text PRIMARY KEY CHECK (kind IN ('expired_suppressions', 'old_daily_summaries',
                                             'old_run_history', 'partitions_ensured')),
    total  bigint NOT NULL CHECK (total >= 0)
);
COMMENT ON TABLE interactions_cron.cleanup_totals IS
    'Rows deleted by kind, and partitions ensured, by every successful cleanup() since the extension was installed';
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.cleanup_totals', '');
REVOKE ALL ON interactions_cron.cleanup_totals FROM PUBLIC;
INSERT INTO interactions_cron.cleanup_totals (kind, total)
SELECT k.kind, pg_catalog.sum((r.result->'cleaned'->>k.key)::bigint)
FROM interactions_cron.job_runs r
CROSS JOIN (VALUES ('expiredSuppressions', 'expired_suppressions'),
                   ('oldDailySummaries', 'old_daily_summaries'),
                   ('oldRunHistory', 'old_run_history'),
                   ('partitionsEnsured', 'partitions_ensured')) AS k(key, kind)
WHERE r.job = 'cleanup' AND r.ok AND r.result->>'status' = 'ok' AND r.result->'cleaned' ? k.key
GROUP BY k.kind;

-- When a tenant's export last failed, kept after it succeeds again (status
-- and last_error are cleared then).  A trigger sets it from updated_at
-- whenever a checkpoint is written as failed, so the 1.1 statements that
-- write checkpoints, and a restore's COPY (the dumped row has it already),
-- keep it right without the library knowing the column.
ALTER TABLE interactions_cron.export_checkpoints ADD COLUMN last_failure_at timestamptz;
COMMENT ON COLUMN interactions_cron.export_checkpoints.last_failure_at IS
    'When the tenant''s export last failed';
UPDATE interactions_cron.export_checkpoints SET last_failure_at = updated_at WHERE status = 'failed';
CREATE FUNCTION interactions_cron.note_checkpoint_failure()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    -- A new failure, or another failed attempt; not a failed checkpoint
    -- written again for another reason (a state adopted from another
    -- database keeps its time).
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'failed'
       OR OLD.attempts IS DISTINCT FROM NEW.attempts THEN
        NEW.last_failure_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION interactions_cron.note_checkpoint_failure() FROM PUBLIC;
COMMENT ON FUNCTION interactions_cron.note_checkpoint_failure() IS
    'Trigger: a checkpoint written as failed records when in last_failure_at';
CREATE TRIGGER note_checkpoint_failure
    BEFORE INSERT OR UPDATE ON interactions_cron.export_checkpoints
    FOR EACH ROW WHEN (NEW.status = 'failed')
    EXECUTE FUNCTION interactions_cron.note_checkpoint_failure();

-- One row per sample: per tenant (the most lagging ones, at most
-- interactions_cron.metrics_max_tenants of them) and per job, each metric's
-- samples together.  The label columns are named as the labels (job_name:
-- a scraper sets job itself).  It reads the platform's tables as
-- export_status does, and needs what export_status needs; it writes nothing.
CREATE FUNCTION interactions_cron.metrics()
RETURNS TABLE (
    metric text, type text, help text,
    tenant_id text, job_name text, outcome text, kind text,
    value double precision)
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'metrics';
COMMENT ON FUNCTION interactions_cron.metrics() IS
    'Prometheus-style samples (name, type, help, labels, value) per tenant and per job';
REVOKE ALL ON FUNCTION interactions_cron.metrics() FROM PUBLIC;
-- The operator reads the status, and so the metrics.
GRANT EXECUTE ON FUNCTION interactions_cron.metrics() TO interactions_cron_operator;
GRANT SELECT ON interactions_cron.job_run_totals, interactions_cron.cleanup_totals
    TO interactions_cron_operator;

-- ---------------------------------------------------------------------------
-- Catch-up within a time budget (issue 22): export_interactions() gains
-- max_runtime.  A new signature is a new function, so the grants a DBA gave
-- on the old one (and the operator role's) are carried over to it.  The
-- library still serves the three-argument function of a database not yet
-- updated.
-- ---------------------------------------------------------------------------
CREATE FUNCTION interactions_cron.export_interactions(
    batch_size integer,
    tenant_id text,
    dry_run boolean,
    max_runtime interval)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'export_interactions';
REVOKE ALL ON FUNCTION interactions_cron.export_interactions(integer, text, boolean, interval) FROM PUBLIC;
DO $$
DECLARE
    grant_entry record;
BEGIN
    FOR grant_entry IN
        SELECT a.grantee, a.is_grantable
        FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
        WHERE p.oid = 'interactions_cron.export_interactions(integer, text, boolean)'::pg_catalog.regprocedure
          AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0
    LOOP
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION interactions_cron.export_interactions(integer, text, boolean, interval) TO %I%s',
            pg_catalog.pg_get_userbyid(grant_entry.grantee),
            CASE WHEN grant_entry.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
DROP FUNCTION interactions_cron.export_interactions(integer, text, boolean);
-- Defaults and settings can only be added once the old function is gone
-- (a call naming the first three arguments would be ambiguous).
CREATE OR REPLACE FUNCTION interactions_cron.export_interactions(
    batch_size integer DEFAULT NULL,
    tenant_id text DEFAULT NULL,
    dry_run boolean DEFAULT false,
    max_runtime interval DEFAULT NULL)
RETURNS jsonb
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'iso_8601'
SET extra_float_digits = 1
SET TimeZone = 'UTC'
SET bytea_output = 'hex'
AS 'MODULE_PATHNAME', 'export_interactions';
COMMENT ON FUNCTION interactions_cron.export_interactions(integer, text, boolean, interval) IS
    'Export rows created since each active tenant''s checkpoint as Hive-partitioned NDJSON; with max_runtime, further batches until caught up or the budget is spent';

---------------------------------------------------------------------------
-- Exactly once at the edges (issue 19): a released checkpoint.
---------------------------------------------------------------------------

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

---------------------------------------------------------------------------
-- Exactly once at the edges (issue 19): an undo that knows its own files.
---------------------------------------------------------------------------

-- What each local file of an unfinished batch is, beside its name: the
-- inode and modification time of its temporary file, which its placing (a
-- rename) keeps.  An undo that finds another file at one of its names (a
-- name the batch never took, because it waited for the standbys or met
-- another's file there and was stopped before its shortened intent
-- committed; or a copy of the batch's own) removes nothing and fails the
-- tenant until a person looks, so another database's file stays.  NULL: an
-- intent written by 1.1's library, adopted from another database, or on S3,
-- whose undo removes by name as 1.1's did.
ALTER TABLE interactions_cron.export_intents
    ADD COLUMN file_identities text[],
    ADD CONSTRAINT export_intents_file_identities_check
        CHECK (file_identities IS NULL
               OR pg_catalog.cardinality(file_identities) = pg_catalog.cardinality(files));
COMMENT ON COLUMN interactions_cron.export_intents.file_identities IS
    'For each of files, the identity (inode:mtime) of the local file the batch placed there; NULL: removed by name';

-- The histories this database has exported in, each with a random id drawn
-- at its first export there, which every file it places names in its
-- origin, after the origin's prefix (origin_prefix: the system identifier
-- and the database's and extension's OIDs) the id was drawn under.  A
-- history is a system identifier and timeline (lake_epoch), but a timeline
-- number can be taken twice (a second standby promoted without the archive
-- where the first left its history file, a second point-in-time restore
-- from one backup): its id cannot.  Nor is an id drawn under two prefixes:
-- a database holding a history's row under another prefix (a copy made
-- with CREATE DATABASE ... TEMPLATE, a dump restored into the same
-- cluster, a reinstalled extension) draws its own, so two databases that
-- descend from one never name one id.  A file of another database or
-- installation is this database's when its prefix and id are a row's
-- (kept through dumps and pg_upgrade, which change the system identifier),
-- or its id is a row's without a prefix: one a DBA recorded as this
-- database's (doc/troubleshooting.md).  A tenant with no recorded history
-- sweeps the files its installation (or a database it was adopted from)
-- placed in a history whose id is not this one's: exports a failover or a
-- restore lost.  An id is drawn at the first export in a history, or when
-- a tenant's state is taken there (tenant_state).
CREATE TABLE interactions_cron.export_histories (
    lake_epoch       text NOT NULL,
    origin_prefix    text CHECK (origin_prefix ~ '^[0-9]+/[0-9]+/[0-9]+$'),
    history_id       uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    first_export_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (lake_epoch, origin_prefix)
);
COMMENT ON TABLE interactions_cron.export_histories IS
    'The histories (system identifier/timeline) this database has exported in, and the id each exported file names in its origin';
COMMENT ON COLUMN interactions_cron.export_histories.origin_prefix IS
    'The origin (system identifier/database OID/extension OID) the id was drawn under, which files name before it; NULL: recorded by a DBA, for any origin naming the id';
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.export_histories', '');
REVOKE ALL ON interactions_cron.export_histories FROM PUBLIC;
-- The origins of the databases a checkpoint was adopted from
-- (adopt_tenant_state), until this database records its own export there:
-- each the origin prefix and the history the database was exporting in
-- when it released the tenant (tenant_state), the source's and those it
-- had adopted the checkpoint from without exporting the tenant since.
-- Past the checkpoint, the files those databases placed in their other
-- histories, which a failover or a restore lost, are this database's to
-- sweep; every other database's files are left alone (src/lake_sweep.c).
-- NULL: not adopted, adopted since exported here, or adopted from a state
-- that named no origin (1.1).
ALTER TABLE interactions_cron.export_checkpoints ADD COLUMN adopted_from text[]
    CHECK (pg_catalog.array_to_string(adopted_from, ',') ~
           '^([0-9]+/[0-9]+/[0-9]+/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(,[0-9]+/[0-9]+/[0-9]+/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})*$');
COMMENT ON COLUMN interactions_cron.export_checkpoints.adopted_from IS
    'The origins (system identifier/database OID/extension OID/history id) of the databases the checkpoint was adopted from, until exported here';

-- The transaction that last moved the position by exporting.  Rows of a
-- later transaction never lie behind the position (the watermark waits for
-- writers), unless a clock behind the one that set it stamped them: after a
-- switchover to a server whose clock is behind, the first export of each
-- tenant in the new history looks for such rows and holds the tenant back
-- rather than pass over them.  NULL: set by 1.1's library, not yet, or
-- forgotten (a position adopted from another database or system).
ALTER TABLE interactions_cron.export_checkpoints ADD COLUMN position_xid xid8;
COMMENT ON COLUMN interactions_cron.export_checkpoints.position_xid IS
    'The transaction that last moved the position by exporting: rows of later transactions lying behind it were stamped by a clock behind';
