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
