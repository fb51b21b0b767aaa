-- The seed's scenario: active tenants export their new rows, the summary has
-- the seed's shape, and the files hold exactly the rows.
SELECT test_helpers.reset_all();

INSERT INTO tenants (id, name, status) VALUES
    ('tenant_001', 'Acme Corp', 'active'),
    ('tenant_002', 'Beta Inc', 'active'),
    ('tenant_003', 'Quiet Ltd', 'active'),
    ('tenant_004', 'Gone GmbH', 'suspended');

INSERT INTO interaction_history (id, tenant_id, created_at, channel, metadata)
SELECT t.first_id + g, t.id, timestamptz '2026-03-30 02:00:00+00' + g * interval '1 second',
       'email', jsonb_build_object('n', g)
FROM (VALUES ('tenant_001', 0, 5), ('tenant_002', 100, 3), ('tenant_004', 200, 2)) t(id, first_id, row_count),
     generate_series(1, t.row_count) g;

SELECT jsonb_pretty(test_helpers.stable(interactions_cron.export_interactions()));

-- The files hold each row once, in keyset order, one JSON object per line.
SELECT path, line_number, doc->>'id' AS id, doc->>'created_at' AS created_at
FROM test_helpers.exported_rows() ORDER BY path, line_number;
SELECT * FROM test_helpers.rows_not_exported_once() r
WHERE r.id IN (SELECT id FROM interaction_history WHERE tenant_id <> 'tenant_004');

-- Nothing written for the idle and the suspended tenant; no temporary files left.
SELECT test_helpers.export_files();

-- The checkpoints moved to the last exported row.
SELECT tenant_id, last_created_at, last_id, status, attempts, rows_exported, files_written, last_file
FROM interactions_cron.export_checkpoints ORDER BY tenant_id;

-- A second run finds nothing new and writes nothing.
SELECT test_helpers.stable(interactions_cron.export_interactions());
SELECT count(*) AS files FROM test_helpers.export_files();

-- New rows are picked up from the checkpoint on, into a new file.
INSERT INTO interaction_history (id, tenant_id, created_at, channel)
VALUES (6, 'tenant_001', '2026-03-30 02:10:00+00', 'sms');
SELECT test_helpers.stable(interactions_cron.export_interactions());
SELECT * FROM test_helpers.rows_not_exported_once() r
WHERE r.id IN (SELECT id FROM interaction_history WHERE tenant_id <> 'tenant_004');

-- Rows newer than the watermark wait for a later run.
INSERT INTO interaction_history (id, tenant_id, created_at)
VALUES (7, 'tenant_003', now() + interval '1 hour');
SELECT test_helpers.stable(interactions_cron.export_interactions(tenant_id => 'tenant_003'));
