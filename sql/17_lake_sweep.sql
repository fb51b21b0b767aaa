-- Files a lost history placed past a checkpoint (issue 12).  Here three
-- batches of one row are exported, then the checkpoint is put back to the
-- first, as if the last two batches' commits were lost in a failover while
-- their files stayed in the lake.  The replay, in batches of two, names its
-- file after row 2 and writes rows 2 and 3 into it: row 3's old file would
-- hold row 3 a second time.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'acme', '2026-03-30 10:00:00+00'), (2, 'acme', '2026-03-30 11:00:00+00'),
    (3, 'acme', '2026-03-30 12:00:00+00');

-- The helpers are in a schema of their own: the jobs refuse a session with
-- temporary objects (see 19_hostile_owners).
CREATE SCHEMA regress_local;
-- export_in_ones exports the three rows in batches of one, from scratch.
CREATE FUNCTION regress_local.export_in_ones() RETURNS bigint LANGUAGE sql AS $$
    SELECT sum((interactions_cron.export_interactions(batch_size => 1)->>'totalExported')::bigint)
    FROM generate_series(1, 3) g
$$;
-- plant writes a file of the given lines under a name of the tenant's day.
CREATE FUNCTION regress_local.plant(name text, lines text[] DEFAULT ARRAY['{"id": 0}']) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT pg_catalog.unnest(%L::text[])) TO %L', lines,
                   format('%s/exports/acme/interaction_history/year=2026/month=03/day=30/%s',
                          test_helpers.export_dir(), name));
END
$$;
-- unplant removes such a file.
CREATE FUNCTION regress_local.unplant(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L',
                   format('rm %s/exports/acme/interaction_history/year=2026/month=03/day=30/%s',
                          test_helpers.export_dir(), name));
END
$$;
-- copies counts, per row of the table, the lines holding it.
CREATE FUNCTION regress_local.copies() RETURNS TABLE (id bigint, copies bigint) LANGUAGE sql AS $$
    SELECT h.id, count(r.doc) FROM public.interaction_history h
    LEFT JOIN test_helpers.exported_rows() r ON (r.doc->>'id')::bigint = h.id
    GROUP BY h.id ORDER BY h.id
$$;

-- A checkpoint of no recorded history (a reinstall, or 1.0's) sweeps only
-- the files this database placed in a history it does not have (on
-- another timeline: t/031); files of this history may stand past a
-- checkpoint set by hand.  The replay's file takes the name of row 2's old
-- file: the tenant fails before its intent names that file (an undo must
-- never remove a file it did not place), nothing is written twice, and
-- nothing of the batch is recorded.
SELECT regress_local.export_in_ones() AS exported;
UPDATE interactions_cron.export_checkpoints
SET last_created_at = '2026-03-30 10:00:00+00', last_id = '1', lake_epoch = NULL;
SELECT r->'totalExported' AS replayed, r->'tenants'->0->>'error' ~ 'already exists' AS name_taken
FROM interactions_cron.export_interactions(batch_size => 2) r;
SELECT * FROM regress_local.copies();
SELECT lake_epoch IS NOT NULL AS history_recorded FROM interactions_cron.export_checkpoints;

-- Another recorded history (a promoted standby, a restore): the first claim
-- judges each file named past the checkpoint by the rows it holds, by
-- (created, id).
-- Row 3's old file goes (the table holds row 3 past the checkpoint), and so
-- does a file whose first row (50) the table never had but which also holds
-- row 3 (issue 19, 3); a file of rows the table lacks only (99) stays.  Only
-- a line's top-level id and created_at are read: row 50's other members
-- (json that jsonb refuses, keys of the same names nested) are passed over.  A
-- file that cannot be judged (an id that is no bigint) leaves the history
-- unrecorded and the tenant unexported, and the result says so (issue 19,
-- 2); once it is gone, the next claim sweeps again and exports.
SELECT test_helpers.remove_exports();
UPDATE interactions_cron.export_checkpoints SET last_created_at = '-infinity', last_id = NULL;
SELECT regress_local.export_in_ones() AS exported;
SELECT regress_local.plant('batch-2026-03-30T13-00-00-000000Z-99.json',
                           ARRAY['{"id": 99, "created_at": "2026-03-30T13:00:00.000000Z"}']);
SELECT regress_local.plant('batch-2026-03-30T11-30-00-000000Z-50.json',
                           ARRAY['{"payload": {"id": 3, "note": "a\u0000b", "n": [1e1000000]}, "id": 50, "created_at": "2026-03-30T11:30:00.000000Z"}',
                                 '{"id": 3, "created_at": "2026-03-30T12:00:00.000000Z"}']);
SELECT regress_local.plant('batch-2026-03-30T12-30-00-000000Z-x.json.json',
                           ARRAY['{"id": "x", "created_at": "2026-03-30T12:30:00.000000Z"}']);
UPDATE interactions_cron.export_checkpoints
SET last_created_at = '2026-03-30 10:00:00+00', last_id = '1', lake_epoch = 'another/1';
SELECT r->'totalExported' AS replayed, r->'ok' AS ok,
       regexp_replace(r->'tenants'->0->>'error', ', "[^"]*" first.*', '') AS error
FROM interactions_cron.export_interactions(batch_size => 2) r;
SELECT lake_epoch = 'another/1' AS history_still_unrecorded, status FROM interactions_cron.export_checkpoints;
SELECT regress_local.unplant('batch-2026-03-30T12-30-00-000000Z-x.json.json');
SELECT r->'totalExported' AS replayed FROM interactions_cron.export_interactions(batch_size => 2) r;
SELECT regexp_replace(f, '.*/', '') AS file FROM test_helpers.export_files() f;
SELECT * FROM regress_local.copies();
SELECT lake_epoch <> 'another/1' AS history_now_this_one FROM interactions_cron.export_checkpoints;
SELECT test_helpers.reset_all();
DROP SCHEMA regress_local CASCADE;
