-- cleanup(): retention of suppressions and daily summaries, partition
-- maintenance, run history; every count and every skip path.
SELECT test_helpers.reset_all();
TRUNCATE public.suppressions, public.interaction_summaries, interactions_cron.job_runs;

-- A result without its timestamp (checked separately), for stable output.
CREATE FUNCTION test_helpers.cleanup_counts(result jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT result - 'timestamp'
$$;

-- Nothing to delete yet: all counts are zero; the reference schema already
-- has this month's and the next three months' partitions.
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup());
SELECT interactions_cron.cleanup()->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS seed_timestamp_format;

-- Suppressions: expired ones go, future and NULL (never expiring) ones stay.
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at) VALUES
    ('t', 'expired-1', now() - interval '1 day'),
    ('t', 'expired-2', now() - interval '1 second'),
    ('t', 'future', now() + interval '1 day'),
    ('t', 'never-1', NULL),
    ('t', 'never-2', NULL);
-- Daily summaries: more than 365 days old go; exactly 365 days old stays;
-- weekly and monthly rows stay whatever their age.
INSERT INTO public.interaction_summaries (tenant_id, period_type, period_start)
SELECT 't', p, (now() AT TIME ZONE 'UTC')::date - d
FROM unnest(ARRAY['daily', 'weekly', 'monthly']) p, unnest(ARRAY[0, 364, 365, 366, 1000]) d;

SET interactions_cron.cleanup_batch_size = 1;  -- many bounded statements, same counts
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup());
RESET interactions_cron.cleanup_batch_size;
SELECT contact_id FROM public.suppressions ORDER BY contact_id;
SELECT period_type, (now() AT TIME ZONE 'UTC')::date - period_start AS days_old
FROM public.interaction_summaries ORDER BY 1, 2;

-- Only NULL expiries left: nothing more to delete.
DELETE FROM public.suppressions WHERE expires_at IS NOT NULL;
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup())->'cleaned' AS cleaned;

-- Every DELETE removes at most cleanup_batch_size rows, and no row is
-- visited twice.  With a batch smaller than a heap block holds, a cursor
-- hands batches of ctids to DELETEs by tid: 25 expired suppressions with a
-- batch size of 10 go in statements of 10, 10 and 5, whether the rows are
-- found by a scan of the table or through its index on the expiry; the
-- statement-level trigger sees each statement's rows.
CREATE TABLE test_helpers.cleanup_statements (n serial, deleted bigint);
CREATE FUNCTION test_helpers.log_cleanup_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_helpers.cleanup_statements (deleted) SELECT count(*) FROM gone;
    RETURN NULL;
END $$;
CREATE TRIGGER log_cleanup_statement AFTER DELETE ON public.suppressions
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION test_helpers.log_cleanup_statement();
SET interactions_cron.cleanup_batch_size = 10;
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
SELECT 't', 'batch-' || g, now() - g * interval '1 minute' FROM generate_series(1, 25) g;
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup())->'cleaned'->'expiredSuppressions' AS expired;
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
SELECT 't', 'batch-' || g, now() - g * interval '1 minute' FROM generate_series(1, 25) g;
SET enable_seqscan = off;
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup())->'cleaned'->'expiredSuppressions' AS expired_by_index;
RESET enable_seqscan;
SELECT string_agg(deleted::text, ', ' ORDER BY n) AS rows_per_statement FROM test_helpers.cleanup_statements;
-- A batch no heap block can exceed (291 rows in 8 kB blocks), and a table
-- the planner reads whole for these rows: one DELETE per block range, here
-- one block each, with that block's expired rows and none of another's.
SET interactions_cron.cleanup_batch_size = 291;
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
SELECT 't', 'block-' || g, CASE WHEN g % 7 <> 0 THEN now() - g * interval '1 minute' END
FROM generate_series(1, 1000) g;
ANALYZE public.suppressions;
CREATE TABLE test_helpers.expired_per_block AS
SELECT (ctid::text::point)[0] AS block, count(*) AS expired
FROM public.suppressions WHERE expires_at < now() GROUP BY 1;
TRUNCATE test_helpers.cleanup_statements;
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup())->'cleaned'->'expiredSuppressions' AS expired_by_block;
SELECT (SELECT count(*) FROM test_helpers.expired_per_block) AS blocks,
       (SELECT string_agg(expired::text, ', ' ORDER BY block) FROM test_helpers.expired_per_block) =
       (SELECT string_agg(deleted::text, ', ' ORDER BY n) FROM test_helpers.cleanup_statements WHERE deleted > 0)
           AS one_statement_per_block,
       (SELECT max(deleted) FROM test_helpers.cleanup_statements) <= 291 AS bounded;
RESET interactions_cron.cleanup_batch_size;
SELECT count(*) FILTER (WHERE expires_at IS NOT NULL) AS expiring_left,
       count(*) FILTER (WHERE contact_id LIKE 'block-%') AS never_expiring_block_rows_left
FROM public.suppressions;
DELETE FROM public.suppressions WHERE contact_id LIKE 'block-%';
DROP TABLE test_helpers.expired_per_block;
DROP TRIGGER log_cleanup_statement ON public.suppressions;
DROP TABLE test_helpers.cleanup_statements;
DROP FUNCTION test_helpers.log_cleanup_statement();

-- Partition maintenance on a table with no partitions yet: this month and
-- the next three, bounded at UTC month starts, named <table>_pYYYY_MM.
CREATE TABLE public.events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE public.daily_rollups (day date NOT NULL) PARTITION BY RANGE (day);
SET interactions_cron.partitioned_tables = 'public.events, public.daily_rollups';
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup())->'cleaned'->'partitionsEnsured' AS created;
SELECT c.relname = 'events_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + m * interval '1 month', 'YYYY_MM') AS expected_name,
       pg_get_expr(c.relpartbound, c.oid) =
           format('FOR VALUES FROM (%L) TO (%L)',
                  ((date_trunc('month', now() AT TIME ZONE 'UTC') + m * interval '1 month') AT TIME ZONE 'UTC')::timestamptz,
                  ((date_trunc('month', now() AT TIME ZONE 'UTC') + (m + 1) * interval '1 month') AT TIME ZONE 'UTC')::timestamptz)
           AS utc_month_bounds
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
     LATERAL (SELECT (regexp_match(c.relname, '_p(\d{4})_(\d\d)$'))) r(parts),
     LATERAL (SELECT ((r.parts[1]::int * 12 + r.parts[2]::int) -
                      (extract(year FROM now() AT TIME ZONE 'UTC')::int * 12 +
                       extract(month FROM now() AT TIME ZONE 'UTC')::int)) AS m) mm
WHERE i.inhparent = 'public.events'::regclass ORDER BY c.relname;
SELECT count(*) AS date_partitions FROM pg_inherits WHERE inhparent = 'public.daily_rollups'::regclass;
-- A second call finds them all there.
SELECT test_helpers.cleanup_counts(interactions_cron.cleanup())->'cleaned'->'partitionsEnsured' AS created_again;

-- Tables that cannot be maintained are skipped with a warning, not an error:
-- not partitioned, list-partitioned, and a default partition that already
-- holds a row of next month (this month's partition is still created).
CREATE TABLE public.by_kind (kind text) PARTITION BY LIST (kind);
CREATE TABLE public.busy (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.busy_default PARTITION OF public.busy DEFAULT;
INSERT INTO public.busy VALUES (date_trunc('month', now()) + interval '1 month 1 day');
SET interactions_cron.partitioned_tables = 'public.tenants, public.by_kind, public.busy';
SET interactions_cron.premake_months = 1;
SELECT r->'status' AS status, r->'cleaned'->'partitionsEnsured' AS created,
       jsonb_array_length(r->'warnings') AS warnings
FROM interactions_cron.cleanup() r;
SELECT regexp_replace(w, '\d{4}_\d\d', 'YYYY_MM', 'g') AS warning
FROM interactions_cron.job_runs j, jsonb_array_elements_text(j.result->'warnings') w
WHERE j.id = (SELECT max(id) FROM interactions_cron.job_runs) ORDER BY 1;
SELECT count(*) AS busy_partitions FROM pg_inherits WHERE inhparent = 'public.busy'::regclass;
RESET interactions_cron.premake_months;

-- A real failure raises an error with its SQLSTATE and deletes nothing; the
-- failed call is still recorded in the run history.
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at) VALUES ('t', 'expired-3', now() - interval '1 hour');
SET interactions_cron.partitioned_tables = 'public.no_such_table';
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT count(*) AS expired_still_there FROM public.suppressions WHERE contact_id = 'expired-3';
SELECT job, ok, result IS NULL AS no_result, error FROM interactions_cron.job_runs ORDER BY id DESC LIMIT 1;
SET interactions_cron.suppressions_table = 'public.no_suppressions';
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
RESET interactions_cron.suppressions_table;
RESET interactions_cron.partitioned_tables;

-- Every call is in the run history, with its full result.
SELECT job, ok, count(*) AS runs, bool_and(finished_at >= started_at) AS timed
FROM interactions_cron.job_runs GROUP BY job, ok ORDER BY job, ok;
SELECT sum((result->'cleaned'->>'expiredSuppressions')::int) AS expired,
       sum((result->'cleaned'->>'oldDailySummaries')::int) AS summaries,
       sum((result->'cleaned'->>'partitionsEnsured')::int) AS partitions
FROM interactions_cron.job_runs WHERE job = 'cleanup' AND ok;

-- Run history older than run_history_retention_days is pruned.
INSERT INTO interactions_cron.job_runs (job, started_at, finished_at, ok)
VALUES ('export', now() - interval '31 days', now() - interval '31 days', true),
       ('export', now() - interval '29 days', now() - interval '29 days', true);
SELECT (interactions_cron.cleanup()->'cleaned'->>'oldRunHistory')::int AS pruned;
SELECT count(*) FILTER (WHERE started_at < now() - interval '30 days') AS older_than_30_days,
       count(*) FILTER (WHERE started_at < now() - interval '28 days') AS older_than_28_days
FROM interactions_cron.job_runs;

-- export_status: per active tenant, where the export stands and what waits.
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, 'acme', '2026-03-30 00:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 5) g;
SELECT tenant_id, status, attempts, rows_waiting, backlog_exceeds_batch, oldest_waiting_at, lag IS NOT NULL AS has_lag
FROM interactions_cron.export_status;
SELECT (interactions_cron.export_interactions(batch_size => 3)->>'totalExported')::int AS exported;
SET interactions_cron.batch_size = 1;
SELECT tenant_id, last_id, rows_exported, rows_waiting, backlog_exceeds_batch, oldest_waiting_at, last_success_at IS NOT NULL AS succeeded
FROM interactions_cron.export_status;
RESET interactions_cron.batch_size;
SELECT job, ok, (result->>'totalExported')::int AS exported FROM interactions_cron.job_runs WHERE job = 'export' AND result IS NOT NULL;

DROP TABLE public.events, public.daily_rollups, public.by_kind, public.busy;
DROP FUNCTION test_helpers.cleanup_counts(jsonb);
