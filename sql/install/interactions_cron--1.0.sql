-- interactions_cron 1.0
\echo Use "CREATE EXTENSION interactions_cron" to load this file. \quit

-- Per-tenant export position and health.  attempts counts consecutive
-- failed runs and returns to 0 on success.
CREATE TABLE interactions_cron.export_checkpoints (
    tenant_id        text PRIMARY KEY,
    last_created_at  timestamptz NOT NULL DEFAULT '-infinity',
    last_id          bigint NOT NULL DEFAULT '-9223372036854775808',
    status           text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed')),
    last_error       text,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_file        text,
    rows_exported    bigint NOT NULL DEFAULT 0 CHECK (rows_exported >= 0),
    files_written    bigint NOT NULL DEFAULT 0 CHECK (files_written >= 0),
    last_success_at  timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE interactions_cron.export_checkpoints IS
    'Per-tenant export position (last exported created_at, id), status and totals';
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.export_checkpoints', '');
REVOKE ALL ON interactions_cron.export_checkpoints FROM PUBLIC;

-- The function-level settings make every text form independent of the
-- caller's session: ISO dates, ISO 8601 intervals, shortest exact floats.
CREATE FUNCTION interactions_cron.export_interactions(
    batch_size integer DEFAULT NULL,
    tenant_id text DEFAULT NULL,
    dry_run boolean DEFAULT false)
RETURNS jsonb
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'iso_8601'
SET extra_float_digits = 1
SET TimeZone = 'UTC'
SET bytea_output = 'hex'
AS 'MODULE_PATHNAME', 'export_interactions';
COMMENT ON FUNCTION interactions_cron.export_interactions(integer, text, boolean) IS
    'Export rows created since each active tenant''s checkpoint as Hive-partitioned NDJSON';

CREATE FUNCTION interactions_cron.reset_checkpoint(
    tenant_id text,
    since timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'reset_checkpoint';
COMMENT ON FUNCTION interactions_cron.reset_checkpoint(text, timestamptz) IS
    'Move a tenant''s export checkpoint back to since (NULL: the beginning) to replay its rows';

REVOKE ALL ON FUNCTION interactions_cron.export_interactions(integer, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION interactions_cron.reset_checkpoint(text, timestamptz) FROM PUBLIC;

-- One row per call of either job, whoever made it.  A call that raised an
-- error is recorded by a background worker, since its own transaction aborts.
CREATE TABLE interactions_cron.job_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text NOT NULL CHECK (job IN ('export', 'cleanup')),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    ok           boolean NOT NULL,
    result       jsonb,
    error        text,
    run_by       name NOT NULL DEFAULT current_user
);
CREATE INDEX job_runs_started_at_idx ON interactions_cron.job_runs (started_at);
CREATE INDEX job_runs_job_started_at_idx ON interactions_cron.job_runs (job, started_at DESC);
COMMENT ON TABLE interactions_cron.job_runs IS
    'Every call of export_interactions() and cleanup(): when, by whom, ok, the full result or the error';
SELECT pg_catalog.pg_extension_config_dump('interactions_cron.job_runs', '');
REVOKE ALL ON interactions_cron.job_runs FROM PUBLIC;

CREATE FUNCTION interactions_cron.cleanup()
RETURNS jsonb
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS 'MODULE_PATHNAME', 'cleanup';
COMMENT ON FUNCTION interactions_cron.cleanup() IS
    'Delete expired suppressions, old daily summaries and old run history; create the coming months'' partitions';
REVOKE ALL ON FUNCTION interactions_cron.cleanup() FROM PUBLIC;

-- Per active tenant: where its export stands and how far behind it is.
-- rows_waiting counts at most batch_size rows past the checkpoint (an index
-- range scan per tenant), so the view stays cheap however large a backlog is.
CREATE FUNCTION interactions_cron.export_status_rows()
RETURNS TABLE (
    tenant_id text, tenant_name text, status text,
    last_created_at timestamptz, last_id bigint, attempts integer, last_error text,
    last_file text, last_success_at timestamptz, rows_exported bigint,
    rows_waiting bigint, backlog_exceeds_batch boolean, oldest_waiting_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    tenants_table regclass := coalesce(current_setting('interactions_cron.tenants_table', true),
                                       'public.tenants')::regclass;
    history_table regclass := coalesce(current_setting('interactions_cron.history_table', true),
                                       'public.interaction_history')::regclass;
    batch integer := coalesce(current_setting('interactions_cron.batch_size', true), '10000')::integer;
BEGIN
    RETURN QUERY EXECUTE format($query$
        SELECT t.id::text, t.name::text, coalesce(c.status, 'ok'),
               c.last_created_at, c.last_id, coalesce(c.attempts, 0), c.last_error,
               c.last_file, c.last_success_at, coalesce(c.rows_exported, 0),
               w.waiting, w.waiting > $1, w.oldest
        FROM %1$s t
        LEFT JOIN interactions_cron.export_checkpoints c ON c.tenant_id = t.id::text
        CROSS JOIN LATERAL (
            SELECT count(*) AS waiting, min(p.created_at) AS oldest
            FROM (SELECT h.created_at FROM %2$s h
                  WHERE h.tenant_id = t.id
                  AND (h.created_at, h.id) > (coalesce(c.last_created_at, '-infinity'),
                                              coalesce(c.last_id, '-9223372036854775808'::bigint))
                  ORDER BY h.created_at, h.id
                  LIMIT $1 + 1) p) w
        WHERE t.status = 'active'
        ORDER BY t.id$query$, tenants_table, history_table)
    USING batch;
END
$function$;
REVOKE ALL ON FUNCTION interactions_cron.export_status_rows() FROM PUBLIC;

CREATE VIEW interactions_cron.export_status AS
SELECT s.*, now() - s.oldest_waiting_at AS lag
FROM interactions_cron.export_status_rows() s;
COMMENT ON VIEW interactions_cron.export_status IS
    'Per active tenant: checkpoint, status, attempts, last error and file, last success, and rows waiting';
REVOKE ALL ON interactions_cron.export_status FROM PUBLIC;

-- pg_cron is a soft dependency: these fail with a hint when it is missing.
CREATE FUNCTION interactions_cron.require_pg_cron()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'undefined_object',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, '
                         'restart, and run CREATE EXTENSION pg_cron; or schedule the jobs yourself with '
                         'cron.schedule_in_database() from the database pg_cron runs in.';
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION interactions_cron.require_pg_cron() FROM PUBLIC;

CREATE FUNCTION interactions_cron.schedule(
    export_schedule text DEFAULT '0 * * * *',
    cleanup_schedule text DEFAULT '0 3 * * *')
RETURNS TABLE (jobname text, jobid bigint, schedule text, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    PERFORM interactions_cron.require_pg_cron();
    -- cron.schedule(name, ...) creates the named job or updates it in place.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
        USING 'interactions_cron.export', export_schedule, 'SELECT interactions_cron.export_interactions()';
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
        USING 'interactions_cron.cleanup', cleanup_schedule, 'SELECT interactions_cron.cleanup()';
    RETURN QUERY EXECUTE
        'SELECT j.jobname::text, j.jobid, j.schedule, j.command FROM cron.job j
         WHERE j.jobname IN (''interactions_cron.export'', ''interactions_cron.cleanup'')
         AND j.username = current_user ORDER BY j.jobname';
END
$function$;
COMMENT ON FUNCTION interactions_cron.schedule(text, text) IS
    'Create or update the pg_cron jobs interactions_cron.export and interactions_cron.cleanup';

CREATE FUNCTION interactions_cron.unschedule()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    removed integer := 0;
    job_name text;
BEGIN
    PERFORM interactions_cron.require_pg_cron();
    FOR job_name IN EXECUTE
        'SELECT j.jobname FROM cron.job j
         WHERE j.jobname IN (''interactions_cron.export'', ''interactions_cron.cleanup'')
         AND j.username = current_user'
    LOOP
        EXECUTE 'SELECT cron.unschedule($1)' USING job_name;
        removed := removed + 1;
    END LOOP;
    RETURN removed;
END
$function$;
COMMENT ON FUNCTION interactions_cron.unschedule() IS
    'Remove the pg_cron jobs created by interactions_cron.schedule(); returns how many';

REVOKE ALL ON FUNCTION interactions_cron.schedule(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION interactions_cron.unschedule() FROM PUBLIC;
