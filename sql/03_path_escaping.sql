-- Tenant ids become exactly one Hive-escaped path segment; nothing is ever
-- written outside the tenant's own directory.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES
    ('a/b', 'slash'), ('..', 'dot dot'), ('.', 'dot'), ('../../etc', 'climber'),
    ('100%', 'percent'), ('with space', 'space'), (E'new\nline', 'newline'),
    ('k:v=w?#*', 'uri chars'), ('üñí', 'unicode'), (repeat('x', 300), 'too long'),
    ('', 'empty');
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT row_number() OVER (ORDER BY id), id, '2026-03-30 12:00:00+00' FROM tenants;

SELECT left(tenant_id, 20) AS tenant_id, exported, file_path, error
FROM test_helpers.outcomes(interactions_cron.export_interactions())
ORDER BY 1;

-- Every file sits in its own tenant directory under exports/.
SELECT split_part(f, '/', 2) AS tenant_directory, count(*) AS files
FROM test_helpers.export_files() f GROUP BY 1 ORDER BY 1;

-- Nothing landed where an unescaped ".." or "../../etc" would have put it.
SELECT pg_stat_file(test_helpers.export_dir() || '/interaction_history', true) IS NULL AS nothing_above_exports,
       pg_stat_file(test_helpers.export_dir() || '/exports/interaction_history', true) IS NULL AS nothing_in_exports_root,
       pg_stat_file(test_helpers.export_dir() || '/../etc', true) IS NULL AS nothing_outside;

-- The tenants with unusable ids failed alone, their checkpoints unmoved.
SELECT left(tenant_id, 20) AS tenant_id, status, attempts, last_id
FROM interactions_cron.export_checkpoints WHERE status = 'failed' ORDER BY 1;
