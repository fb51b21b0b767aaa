-- interactions_cron.compression = gzip: .json.gz files holding the same
-- NDJSON, under the same deterministic names.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('zip', 'Zip');
INSERT INTO interaction_history (id, tenant_id, created_at, channel, metadata)
SELECT g, 'zip', timestamptz '2026-03-30 23:00:00+00' + g * interval '1 second', E'text with "quotes"\n',
       jsonb_build_object('g', g, 'pad', repeat('x', 100))
FROM generate_series(1, 5000) g;

SET interactions_cron.compression = 'gzip';
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f;

-- Decompressed, the files hold every row once, as the same JSON.
CREATE TEMP TABLE unzipped (line text);
DO $$
DECLARE f text;
BEGIN
    FOR f IN SELECT test_helpers.export_files() LOOP
        -- csv with bytes that never occur as delimiter or quote: lines verbatim
        EXECUTE format('COPY unzipped FROM PROGRAM %L WITH (FORMAT csv, DELIMITER %L, QUOTE %L)',
                       'gzip -dc ''' || test_helpers.export_dir() || '/' || f || '''',
                       E'\x01', E'\x02');
    END LOOP;
END $$;
SELECT count(*) AS lines, count(DISTINCT (line::jsonb->>'id')) AS distinct_ids FROM unzipped;
SELECT count(*) AS rows_differing
FROM interaction_history h
LEFT JOIN unzipped u ON (u.line::jsonb->>'id')::bigint = h.id
WHERE u.line IS NULL OR (u.line::jsonb->>'channel') <> h.channel OR (u.line::jsonb->'metadata') <> h.metadata;

-- The files are far smaller than the JSON they hold.
SELECT sum((pg_stat_file(test_helpers.export_dir() || '/' || f)).size) * 5
       < sum(octet_length(u.line)) AS compressed_at_least_5x
FROM test_helpers.export_files() f, (SELECT string_agg(line, E'\n') AS line FROM unzipped) u;
-- The jobs refuse a session with temporary objects (see 18_hostile_owners).
DROP TABLE unzipped;

-- A replay writes the same .json.gz names again.
SELECT interactions_cron.reset_checkpoint('zip');
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT count(*) AS files FROM test_helpers.export_files();
RESET interactions_cron.compression;
