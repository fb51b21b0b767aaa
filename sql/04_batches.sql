-- Batch boundaries: rows sharing one created_at split across batches, and a
-- batch spanning UTC days, each give distinct files holding every row once.
SELECT test_helpers.reset_all();
SET TimeZone = 'America/Los_Angeles';
INSERT INTO tenants (id, name) VALUES ('same_instant', 'Same instant'), ('two_days', 'Two days');

INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, 'same_instant', '2026-03-30 02:00:00+00' FROM generate_series(1, 25) g;
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (101, 'two_days', '2026-03-30 23:59:59.999999+00'),
    (102, 'two_days', '2026-03-31 00:00:00+00'),
    (103, 'two_days', '2026-03-31 00:00:00.5+00');

-- batch_size from the setting; 10 rows a call.
SET interactions_cron.batch_size = 10;
SELECT tenant_id, exported, files, file_path, batch_full
FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT tenant_id, exported, files, file_path, batch_full
FROM test_helpers.outcomes(interactions_cron.export_interactions(tenant_id => 'same_instant'));
SELECT tenant_id, exported, files, file_path, batch_full
FROM test_helpers.outcomes(interactions_cron.export_interactions(tenant_id => 'same_instant'));
RESET interactions_cron.batch_size;

-- Three distinct files for the same instant, every row exactly once.
SELECT f FROM test_helpers.export_files() f ORDER BY f;
SELECT * FROM test_helpers.rows_not_exported_once();

-- Every row sits under the UTC day of its created_at.
SELECT count(*) AS rows_in_wrong_day
FROM test_helpers.exported_rows()
WHERE path NOT LIKE '%' || to_char((doc->>'created_at')::timestamptz AT TIME ZONE 'UTC',
                                   '"year="YYYY"/month="MM"/day="DD') || '/%';

-- An explicit batch_size overrides the setting and must be positive.
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions(batch_size => 0)');
RESET TimeZone;
