-- interactions_cron 1.1 -> 1.2.  CREATE EXTENSION runs 1.0's script and the
-- updates after it, so a fresh install and an upgraded one are built by the
-- same statements.  Each section below stands on its own.
\echo Use "ALTER EXTENSION interactions_cron UPDATE TO '1.2'" to load this file. \quit

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
