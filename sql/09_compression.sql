-- interactions_cron.compression = gzip: .json.gz files holding the same
-- NDJSON, under the same deterministic names.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('zip', 'Zip');
INSERT INTO interaction_history (id, tenant_id, created_at, channel, metadata)
SELECT g, 'zip', timestamptz '2026-03-30 23:00:00+00' + g * interval '1 second', E'text with "quotes"\n',
       jsonb_build_object('g', g, 'pad', repeat('x', 100))
FROM generate_series(1, 5000) g;

-- Decompressed by the codec's tool, the files hold every row once, as the
-- same JSON, and are far smaller than the JSON they hold.  (Not in pg_temp:
-- the jobs refuse a session with temporary objects, see 19_hostile_owners.)
CREATE SCHEMA regress_local;
CREATE TABLE regress_local.unzipped (line text);
CREATE FUNCTION regress_local.check_decompressed(tool text)
RETURNS TABLE (lines bigint, distinct_ids bigint, rows_differing bigint, compressed_at_least_5x boolean)
LANGUAGE plpgsql AS $$
DECLARE f text;
BEGIN
    TRUNCATE regress_local.unzipped;
    FOR f IN SELECT test_helpers.export_files() LOOP
        -- csv with bytes that never occur as delimiter or quote: lines verbatim
        EXECUTE format('COPY regress_local.unzipped FROM PROGRAM %L WITH (FORMAT csv, DELIMITER %L, QUOTE %L)',
                       tool || ' -dc ''' || test_helpers.export_dir() || '/' || f || '''',
                       E'\x01', E'\x02');
    END LOOP;
    RETURN QUERY SELECT
        (SELECT count(*) FROM regress_local.unzipped),
        (SELECT count(DISTINCT (u.line::jsonb->>'id')) FROM regress_local.unzipped u),
        (SELECT count(*) FROM interaction_history h
         LEFT JOIN regress_local.unzipped u ON (u.line::jsonb->>'id')::bigint = h.id
         WHERE u.line IS NULL OR (u.line::jsonb->>'channel') <> h.channel
            OR (u.line::jsonb->'metadata') <> h.metadata),
        (SELECT sum((pg_stat_file(test_helpers.export_dir() || '/' || e)).size) * 5
                < (SELECT sum(octet_length(u.line) + 1) FROM regress_local.unzipped u)
         FROM test_helpers.export_files() e);
END $$;

SET interactions_cron.compression = 'gzip';
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f;
SELECT * FROM regress_local.check_decompressed('gzip');

-- A replay writes the same .json.gz names again.
SELECT interactions_cron.reset_checkpoint('zip');
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT count(*) AS files FROM test_helpers.export_files();
RESET interactions_cron.compression;

-- interactions_cron.compression = zstd: .json.zst files (zstd frames with a
-- content checksum) holding the same NDJSON.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('zip', 'Zip');
INSERT INTO interaction_history (id, tenant_id, created_at, channel, metadata)
SELECT g, 'zip', timestamptz '2026-03-30 23:00:00+00' + g * interval '1 second', E'text with "quotes"\n',
       jsonb_build_object('g', g, 'pad', repeat('x', 100))
FROM generate_series(1, 5000) g;
SET interactions_cron.compression = 'zstd';
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f;
SELECT * FROM regress_local.check_decompressed('zstd -q');

-- A retry after a compression change stays exactly once: a batch fails
-- after placing its .json.zst files, and the retry writes .json.gz names;
-- the failed batch's files are gone.
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT 5000 + g, 'zip', timestamptz '2026-03-31 23:00:00+00' + g * interval '1 second'
FROM generate_series(1, 10) g;
SET interactions_cron.debug_fault = 'error_after_place';
SELECT tenant_id, exported, files, error IS NOT NULL AS failed
FROM test_helpers.outcomes(interactions_cron.export_interactions());
RESET interactions_cron.debug_fault;
SET interactions_cron.compression = 'gzip';
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT f FROM test_helpers.export_files() f WHERE f LIKE '%day=31%';
SELECT count(*) AS outstanding_intents FROM interactions_cron.export_intents;

-- compression_level: 0 is the measured default (1); a higher level gives
-- smaller files of the same rows; a level the codec lacks is an error.
CREATE TABLE regress_local.sizes (level int, bytes bigint);
SHOW interactions_cron.compression_level;
SELECT test_helpers.remove_exports();
SELECT interactions_cron.reset_checkpoint('zip');
SET interactions_cron.compression_level = 1;
SELECT interactions_cron.export_interactions()->'totalExported' AS exported;
INSERT INTO regress_local.sizes SELECT 1, sum((pg_stat_file(test_helpers.export_dir() || '/' || f)).size)
FROM test_helpers.export_files() f;
SELECT test_helpers.remove_exports();
SELECT interactions_cron.reset_checkpoint('zip');
SET interactions_cron.compression_level = 9;
SELECT interactions_cron.export_interactions()->'totalExported' AS exported;
INSERT INTO regress_local.sizes SELECT 9, sum((pg_stat_file(test_helpers.export_dir() || '/' || f)).size)
FROM test_helpers.export_files() f;
RESET interactions_cron.compression_level;
SELECT (SELECT bytes FROM regress_local.sizes WHERE level = 9) < (SELECT bytes FROM regress_local.sizes WHERE level = 1) AS level_9_is_smaller;
SET interactions_cron.compression_level = 12;
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
-- 12 is a zstd level.
SET interactions_cron.compression = 'zstd';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions(dry_run => true)');
SELECT test_helpers.error_of('SET interactions_cron.compression_level = 20');
RESET interactions_cron.compression_level;
RESET interactions_cron.compression;

DROP SCHEMA regress_local CASCADE;
