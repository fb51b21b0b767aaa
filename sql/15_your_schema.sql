-- Any platform schema (issue 9): a Prisma-style schema mapped by settings,
-- without views; uuid and numeric ids; bad mappings refused up front.
SELECT test_helpers.reset_all();
TRUNCATE interactions_cron.job_runs;
\set ECHO none
\i test/sql/prisma_schema.sql
\set ECHO all

-- The writers are Prisma's: their sessions run in UTC.
SET TimeZone = 'UTC';
INSERT INTO app."Tenant" (id, "displayName", status, "deletedAt") VALUES
    ('clx9zq0tenantb', 'Beta', 'ACTIVE', NULL),
    ('clx1aa0tenanta', 'Alpha', 'ACTIVE', NULL),
    ('clx5mm0tenantg', 'Gone', 'ACTIVE', '2026-03-01 00:00:00'),
    ('clx7pp0tenants', 'Suspended', 'SUSPENDED', NULL);
-- Ids whose order is not insertion order; one row just before UTC midnight.
INSERT INTO app."Interaction" (id, "tenantId", channel, payload, "createdAt") VALUES
    ('ckz3', 'clx1aa0tenanta', 'email', '{"n": 1}', '2026-03-30 23:59:59.999'),
    ('ckz1', 'clx1aa0tenanta', 'sms',   NULL,       '2026-03-31 00:00:00.000'),
    ('ckz2', 'clx1aa0tenanta', 'email', '{"n": 3}', '2026-03-31 00:00:00.000'),
    ('ckb0', 'clx9zq0tenantb', 'push',  NULL,       '2026-03-31 08:15:00.250'),
    ('ckg0', 'clx5mm0tenantg', 'email', NULL,       '2026-03-31 09:00:00.000'),
    ('cks0', 'clx7pp0tenants', 'email', NULL,       '2026-03-31 09:00:00.000');

-- The mapping, as a DBA sets it with ALTER DATABASE ... SET (README, "Your schema").
SET interactions_cron.tenants_table = 'app."Tenant"';
SET interactions_cron.tenant_name_column = 'displayName';
SET interactions_cron.active_tenants_filter = 'status = ''ACTIVE'' AND "deletedAt" IS NULL';
SET interactions_cron.history_table = 'app."Interaction"';
SET interactions_cron.history_tenant_column = 'tenantId';
SET interactions_cron.history_created_column = 'createdAt';
SET interactions_cron.suppressions_table = 'app."Suppression"';
SET interactions_cron.suppressions_expires_column = 'expiresAt';
SET interactions_cron.summaries_table = 'app."DailySummary"';
SET interactions_cron.summaries_period_type_column = 'periodType';
SET interactions_cron.summaries_daily_value = 'DAILY';
SET interactions_cron.summaries_period_start_column = 'periodStart';
SET interactions_cron.partitioned_tables = '';

-- The exporting session runs in another zone than the writers: the files
-- hold UTC instants with Z, in UTC day partitions, whatever its TimeZone.
SET TimeZone = 'Asia/Tokyo';
SELECT test_helpers.stable(interactions_cron.export_interactions());
-- Every timestamp column of the row (updatedAt too) is a UTC instant.
SELECT path, doc - 'updatedAt' AS doc, doc->>'updatedAt' ~ '^\d{4}-\d\d-\d\dT[0-9:.]+Z$' AS updated_at_is_utc
FROM test_helpers.exported_rows() ORDER BY path, line_number;
SELECT tenant_id, last_created_at AT TIME ZONE 'UTC' AS last_created_utc, last_id
FROM interactions_cron.export_checkpoints ORDER BY tenant_id;
SELECT test_helpers.stable(interactions_cron.export_interactions()) -> 'totalExported' AS second_run;

-- 1,500 rows of one transaction share one createdAt (CURRENT_TIMESTAMP):
-- batches of 1,000 split the tie exactly, by the text ids' order.
SET TimeZone = 'UTC';
INSERT INTO app."Interaction" (id, "tenantId", channel, "createdAt")
SELECT 'tie' || lpad(to_hex(g * 7919 % 1500), 4, '0'), 'clx9zq0tenantb', 'email', '2026-04-01 12:00:00.000'
FROM generate_series(1, 1500) g;
SET TimeZone = 'America/New_York';
SELECT tenant_id, exported, files FROM test_helpers.outcomes(interactions_cron.export_interactions(1000)) ORDER BY 1;
SELECT tenant_id, last_id FROM interactions_cron.export_checkpoints WHERE tenant_id = 'clx9zq0tenantb';
SELECT tenant_id, exported, files FROM test_helpers.outcomes(interactions_cron.export_interactions(1000)) ORDER BY 1;
SELECT count(*) AS lines, count(DISTINCT doc->>'id') AS distinct_ids,
       count(*) FILTER (WHERE doc->>'createdAt' = '2026-04-01T12:00:00Z') AS at_the_tie
FROM test_helpers.exported_rows() WHERE doc->>'id' LIKE 'tie%';
SELECT i.id FROM app."Interaction" i
WHERE i."tenantId" IN ('clx1aa0tenanta', 'clx9zq0tenantb')
AND (SELECT count(*) FROM test_helpers.exported_rows() r WHERE r.doc->>'id' = i.id) <> 1;

-- The batch query and the idle check use the ("tenantId", "createdAt", id)
-- index as it is: with sequential scans disabled, the table is never read
-- whole (a converted column would force one).
INSERT INTO app."Interaction" (id, "tenantId", channel, "createdAt")
VALUES ('ckz9', 'clx1aa0tenanta', 'sms', '2026-04-02 00:00:00');
SELECT pg_stat_force_next_flush();
SELECT seq_scan AS seq_before, idx_scan AS idx_before
FROM pg_stat_user_tables WHERE relid = 'app."Interaction"'::regclass \gset
SET enable_seqscan = off;
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
RESET enable_seqscan;
SELECT pg_sleep(0.5);
SELECT pg_stat_clear_snapshot();
SELECT seq_scan - :seq_before AS seq_scans, idx_scan > :idx_before AS index_used
FROM pg_stat_user_tables WHERE relid = 'app."Interaction"'::regclass;

-- export_status and reset_checkpoint work on the mapped schema.
SELECT tenant_id, tenant_name, last_id, rows_waiting FROM interactions_cron.export_status;
SELECT interactions_cron.reset_checkpoint('clx1aa0tenanta', '2026-03-31 00:00:00+00');
-- The run history reports the position it moved from, the text id included.
SELECT result->>'fromId' AS from_id FROM interactions_cron.job_runs
WHERE job = 'reset_checkpoint' ORDER BY id DESC LIMIT 1;
SELECT tenant_id, rows_waiting, oldest_waiting_at AT TIME ZONE 'UTC' AS oldest_utc
FROM interactions_cron.export_status WHERE tenant_id = 'clx1aa0tenanta';
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('clx5mm0tenantg_nope')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.export_interactions(tenant_id => 'clx7pp0tenants')$$);

-- Cleanup with an enum period type and timestamp(3) starts and expiries.
SET TimeZone = 'UTC';
INSERT INTO app."Suppression" VALUES
    ('s1', 'clx1aa0tenanta', 'c1', now()::timestamp - interval '1 minute'),
    ('s2', 'clx1aa0tenanta', 'c2', now()::timestamp + interval '1 hour'),
    ('s3', 'clx1aa0tenanta', 'c3', NULL);
INSERT INTO app."DailySummary" VALUES
    ('d1', 'clx1aa0tenanta', 'DAILY', date_trunc('day', now()::timestamp) - interval '366 days', 1),
    ('d2', 'clx1aa0tenanta', 'DAILY', date_trunc('day', now()::timestamp) - interval '365 days', 1),
    ('d3', 'clx1aa0tenanta', 'WEEKLY', date_trunc('day', now()::timestamp) - interval '400 days', 1);
SET TimeZone = 'Pacific/Kiritimati';
SELECT interactions_cron.cleanup()->'cleaned' AS cleaned;
SELECT id FROM app."Suppression" ORDER BY id;
SELECT id FROM app."DailySummary" ORDER BY id;

-- Bad mappings fail the run at the start, naming the setting.
SET interactions_cron.history_created_column = 'created_at';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SET interactions_cron.history_created_column = 'channel';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
RESET interactions_cron.history_created_column;
SET interactions_cron.history_created_column = 'createdAt';
SET interactions_cron.active_tenants_filter = 'status';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SET interactions_cron.active_tenants_filter = 'status = ''ACTIVE'' AND';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SET interactions_cron.active_tenants_filter = 'true) OR (true';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SET interactions_cron.active_tenants_filter = 'status = ''ACTIVE''';
SET interactions_cron.summaries_daily_value = 'daily';
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT test_helpers.error_of($$SET interactions_cron.history_timezone = 'Mars/Olympus'$$);
-- A zone that changes its clocks cannot order wall-clock times.
SELECT test_helpers.error_of($$SET interactions_cron.history_timezone = 'Europe/Berlin'$$);
SELECT test_helpers.error_of($$SET interactions_cron.history_timezone = 'Etc/GMT-9'$$);
-- A system column is no column of the data.
SET interactions_cron.history_id_column = 'ctid';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
RESET interactions_cron.history_id_column;
-- A case-insensitive tenant key would match one tenant's rows to another.
CREATE COLLATION app.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE app.ci_history (id text PRIMARY KEY, "tenantId" text COLLATE app.ci NOT NULL,
                             "createdAt" timestamp(3) NOT NULL);
SET interactions_cron.history_table = 'app.ci_history';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
-- Tenant keys of different types never match: refused rather than never exported.
CREATE TABLE app.uuid_history (id text PRIMARY KEY, "tenantId" uuid NOT NULL, "createdAt" timestamp(3) NOT NULL);
SET interactions_cron.history_table = 'app.uuid_history';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
SET interactions_cron.history_table = 'app."Interaction"';
SELECT test_helpers.error_of($$SET interactions_cron.history_id_column = ''$$);

RESET ALL;
DROP SCHEMA app CASCADE;
SELECT test_helpers.reset_all();

-- uuid and numeric ids, with the reference column names: ties drain one row
-- at a time through the text form of the last id.
CREATE TABLE public.uuid_history (id uuid PRIMARY KEY, tenant_id text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE public.numeric_history (id numeric PRIMARY KEY, tenant_id text NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO public.uuid_history VALUES
    ('ffffffff-0000-0000-0000-000000000001', 'acme', '2026-03-30 10:00:00+00'),
    ('00000000-0000-0000-0000-00000000000a', 'acme', '2026-03-30 10:00:00+00'),
    ('80000000-0000-0000-0000-000000000000', 'acme', '2026-03-30 10:00:00+00');
INSERT INTO public.numeric_history VALUES
    (10.5, 'acme', '2026-03-30 10:00:00+00'), (2.25, 'acme', '2026-03-30 10:00:00+00'),
    (-1e30, 'acme', '2026-03-30 10:00:00+00');
SET interactions_cron.history_table = 'public.uuid_history';
SELECT r->'tenants'->0->'filePath' AS file, r->'totalExported' AS n
FROM generate_series(1, 4) g, LATERAL interactions_cron.export_interactions(1 + 0 * g) r;
SELECT last_id FROM interactions_cron.export_checkpoints;
SELECT interactions_cron.reset_checkpoint('acme');
SELECT test_helpers.remove_exports();
SET interactions_cron.history_table = 'public.numeric_history';
SELECT r->'tenants'->0->'filePath' AS file, r->'totalExported' AS n
FROM generate_series(1, 4) g, LATERAL interactions_cron.export_interactions(1 + 0 * g) r;
SELECT last_id FROM interactions_cron.export_checkpoints;
SELECT doc FROM test_helpers.exported_rows() ORDER BY path;
RESET interactions_cron.history_table;
DROP TABLE public.uuid_history, public.numeric_history;
SELECT test_helpers.reset_all();
