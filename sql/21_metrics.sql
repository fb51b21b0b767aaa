-- interactions_cron.metrics() (issue 23): the samples the HTTP shim's
-- /metrics and a DBA's exporter read.  Names and types as Prometheus expects,
-- each family's samples together, the most lagging tenants first and at most
-- metrics_max_tenants of them, the values of the checkpoints and backlogs,
-- runs by outcome that history pruning cannot lower, and who may read them.
SELECT test_helpers.reset_all();
TRUNCATE interactions_cron.job_runs, interactions_cron.job_run_totals, interactions_cron.cleanup_totals;
TRUNCATE public.suppressions;
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('beta', 'Beta'), ('idle', 'Idle');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'acme', now() - interval '3 hours'), (2, 'acme', now() - interval '2 hours'),
    (3, 'beta', now() - interval '1 hour');

-- Every name follows Prometheus's conventions: a counter ends in _total, a
-- time is in seconds, and each family's samples come together, once.
SELECT metric, type, count(*) AS samples,
       metric ~ '^interactions_cron_[a-z_]+$' AS well_named,
       (type = 'counter') = (metric ~ '_total$') AS total_iff_counter,
       help <> '' AS has_help
FROM interactions_cron.metrics()
GROUP BY metric, type, help ORDER BY min(metric);
SELECT count(*) AS families_split_apart
FROM (SELECT s.metric
      FROM (SELECT m.metric, lag(m.metric) OVER (ORDER BY m.n) AS previous
            FROM interactions_cron.metrics() WITH ORDINALITY
              AS m(metric, type, help, tenant_id, job_name, outcome, kind, value, n)) s
      WHERE s.metric IS DISTINCT FROM s.previous
      GROUP BY s.metric HAVING count(*) > 1) split;

-- Before any export: the backlog, most lagging first; no checkpoint yet.
SELECT metric, tenant_id, value
FROM interactions_cron.metrics()
WHERE metric IN ('interactions_cron_tenants_active', 'interactions_cron_tenants_reported',
                 'interactions_cron_tenant_rows_waiting', 'interactions_cron_tenant_backlog_exceeds_batch',
                 'interactions_cron_tenant_consecutive_failures', 'interactions_cron_tenant_rows_exported_total');
SELECT tenant_id, CASE tenant_id WHEN 'idle' THEN value = 0
                   ELSE value BETWEEN h.hours * 3600 AND h.hours * 3600 + 600 END AS age_of_oldest_row
FROM interactions_cron.metrics()
JOIN (VALUES ('acme', 3), ('beta', 1), ('idle', 0)) AS h(tenant, hours) ON h.tenant = tenant_id
WHERE metric = 'interactions_cron_tenant_oldest_waiting_age_seconds';
SELECT count(*) AS checkpoint_samples
FROM interactions_cron.metrics()
WHERE metric IN ('interactions_cron_tenant_checkpoint_timestamp_seconds',
                 'interactions_cron_tenant_last_success_timestamp_seconds',
                 'interactions_cron_tenant_last_failure_timestamp_seconds');

-- The cap: the most lagging tenants only; 0 reports none.
SET interactions_cron.metrics_max_tenants = 2;
SELECT metric, tenant_id, value FROM interactions_cron.metrics()
WHERE metric IN ('interactions_cron_tenants_active', 'interactions_cron_tenants_reported',
                 'interactions_cron_tenant_rows_waiting');
SET interactions_cron.metrics_max_tenants = 1;
SELECT tenant_id FROM interactions_cron.metrics() WHERE metric = 'interactions_cron_tenant_rows_waiting';
SET interactions_cron.metrics_max_tenants = 0;
SELECT metric, value FROM interactions_cron.metrics() WHERE tenant_id IS NOT NULL OR metric LIKE '%tenants%';
RESET interactions_cron.metrics_max_tenants;

-- A batch of one row a tenant: the checkpoint's totals and position.
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions(batch_size => 1)) ORDER BY 1;
SELECT m.metric, m.tenant_id, m.value
FROM interactions_cron.metrics() m
WHERE m.metric IN ('interactions_cron_tenant_rows_exported_total', 'interactions_cron_tenant_files_written_total',
                   'interactions_cron_tenant_rows_waiting', 'interactions_cron_tenant_consecutive_failures')
ORDER BY m.metric, m.tenant_id;
SELECT m.tenant_id, m.value = extract(epoch FROM c.last_created_at) AS is_the_checkpoint
FROM interactions_cron.metrics() m JOIN interactions_cron.export_checkpoints c USING (tenant_id)
WHERE m.metric = 'interactions_cron_tenant_checkpoint_timestamp_seconds' ORDER BY 1;
SELECT m.tenant_id, m.value = extract(epoch FROM c.last_success_at) AS is_the_last_success
FROM interactions_cron.metrics() m JOIN interactions_cron.export_checkpoints c USING (tenant_id)
WHERE m.metric = 'interactions_cron_tenant_last_success_timestamp_seconds' ORDER BY 1;
SELECT metric, job_name, outcome, value FROM interactions_cron.metrics()
WHERE metric IN ('interactions_cron_job_runs_total', 'interactions_cron_job_consecutive_failures');
SELECT m.job_name, m.outcome, m.value = extract(epoch FROM r.finished_at) AS is_the_last_run
FROM interactions_cron.metrics() m
JOIN interactions_cron.job_runs r ON r.job = m.job_name
WHERE m.metric = 'interactions_cron_job_last_run_timestamp_seconds';
SELECT m.job_name, m.value = extract(epoch FROM r.finished_at - r.started_at) AS is_its_duration
FROM interactions_cron.metrics() m
JOIN interactions_cron.job_runs r ON r.job = m.job_name
WHERE m.metric = 'interactions_cron_job_last_run_duration_seconds';

-- Two failed runs: each tenant's failures in a row and when it last failed,
-- the export's failed runs; then a success clears the failures in a row and
-- keeps when the tenant last failed.
SET interactions_cron.debug_fault = 'error_before_place';
SELECT tenant_id, exported, error IS NOT NULL AS failed
FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT tenant_id, exported, error IS NOT NULL AS failed
FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
RESET interactions_cron.debug_fault;
SELECT metric, tenant_id, job_name, outcome, value FROM interactions_cron.metrics()
WHERE metric IN ('interactions_cron_tenant_consecutive_failures', 'interactions_cron_job_runs_total',
                 'interactions_cron_job_consecutive_failures');
SELECT m.tenant_id, m.value = extract(epoch FROM c.updated_at) AS is_when_it_failed
FROM interactions_cron.metrics() m JOIN interactions_cron.export_checkpoints c USING (tenant_id)
WHERE m.metric = 'interactions_cron_tenant_last_failure_timestamp_seconds' ORDER BY 1;
-- A failed checkpoint written again without another attempt (as an adopted
-- state is) keeps the time it failed.
CREATE TABLE regress_failed_at AS
SELECT tenant_id, last_failure_at FROM interactions_cron.export_checkpoints WHERE status = 'failed';
UPDATE interactions_cron.export_checkpoints SET updated_at = updated_at + interval '1 hour' WHERE status = 'failed';
SELECT count(*) AS failures_moved FROM interactions_cron.export_checkpoints c JOIN regress_failed_at f USING (tenant_id)
WHERE c.last_failure_at IS DISTINCT FROM f.last_failure_at;
UPDATE interactions_cron.export_checkpoints SET updated_at = updated_at - interval '1 hour' WHERE status = 'failed';
DROP TABLE regress_failed_at;
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT metric, tenant_id, job_name, value FROM interactions_cron.metrics()
WHERE metric IN ('interactions_cron_tenant_consecutive_failures', 'interactions_cron_job_consecutive_failures',
                 'interactions_cron_tenant_rows_waiting');
SELECT tenant_id, status, last_failure_at IS NOT NULL AS still_knows_when_it_failed
FROM interactions_cron.export_checkpoints ORDER BY 1;

-- cleanup(): rows deleted by kind, summed over the successful runs.
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at) VALUES
    ('acme', 'c1', now() - interval '1 day'), ('acme', 'c2', now() - interval '1 day'),
    ('acme', 'c3', now() + interval '1 day');
SELECT interactions_cron.cleanup()->'cleaned'->'expiredSuppressions' AS deleted;
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at) VALUES ('beta', 'c4', now() - interval '1 day');
SELECT interactions_cron.cleanup()->'cleaned'->'expiredSuppressions' AS deleted;
SELECT metric, job_name, outcome, kind, value FROM interactions_cron.metrics()
WHERE metric LIKE 'interactions_cron_cleanup%' OR (metric = 'interactions_cron_job_runs_total' AND job_name = 'cleanup');
-- A cleanup rolled back with its caller's transaction is not counted.
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at) VALUES ('beta', 'c5', now() - interval '1 day');
BEGIN;
SELECT interactions_cron.cleanup()->'cleaned'->'expiredSuppressions' AS deleted;
ROLLBACK;
SELECT value FROM interactions_cron.metrics()
WHERE metric = 'interactions_cron_cleanup_rows_deleted_total' AND kind = 'expired_suppressions';

-- Pruning the run history does not lower a counter.
DELETE FROM interactions_cron.job_runs;
SELECT job_name, outcome, value FROM interactions_cron.metrics() WHERE metric = 'interactions_cron_job_runs_total';

-- It writes nothing: it runs in a read-only transaction.
BEGIN READ ONLY;
SELECT count(*) > 0 AS answers_read_only FROM interactions_cron.metrics();
COMMIT;

-- Who may read it: not PUBLIC; an operator who may read the platform's
-- tables, as for export_status; without that, 42501.
SELECT has_function_privilege('public', 'interactions_cron.metrics()', 'EXECUTE') AS public_may_execute;
CREATE ROLE regress_ic_metrics;
GRANT USAGE ON SCHEMA test_helpers TO regress_ic_metrics;
GRANT interactions_cron_operator TO regress_ic_metrics;
SET ROLE regress_ic_metrics;
SELECT test_helpers.error_of($$SELECT count(*) FROM interactions_cron.metrics()$$);
RESET ROLE;
GRANT SELECT ON public.tenants, public.interaction_history TO regress_ic_metrics;
SET ROLE regress_ic_metrics;
SELECT count(*) > 0 AS operator_reads_metrics FROM interactions_cron.metrics();
SELECT count(*) >= 0 AS operator_reads_totals
FROM interactions_cron.job_run_totals, interactions_cron.cleanup_totals;
RESET ROLE;
REVOKE ALL ON public.tenants, public.interaction_history FROM regress_ic_metrics;
REVOKE ALL ON SCHEMA test_helpers FROM regress_ic_metrics;
DROP ROLE regress_ic_metrics;
