-- Helpers of the pg_regress suite: list and read what the export wrote.
CREATE SCHEMA test_helpers;

-- The directory the export writes to: interactions_cron.export_dir, or when
-- it is empty (a server the tests did not configure, as under `make
-- installcheck`) its default, a folder per database under the data directory.
-- SECURITY DEFINER: the test roles that are not superusers mask messages too.
CREATE FUNCTION test_helpers.export_dir()
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT coalesce(nullif(current_setting('interactions_cron.export_dir', true), ''),
                    current_setting('data_directory') || '/interactions_cron/' || current_database())
$$;

-- Every file under <export_dir>/exports, relative to export_dir, hidden ones
-- (temporary files) included.
CREATE FUNCTION test_helpers.export_files()
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    root text := test_helpers.export_dir();
    pending text[] := ARRAY['exports'];
    dir text;
    entry text;
BEGIN
    IF NOT coalesce((pg_stat_file(root || '/exports', true)).isdir, false) THEN
        RETURN;
    END IF;
    WHILE cardinality(pending) > 0 LOOP
        dir := pending[1];
        pending := pending[2:];
        FOR entry IN SELECT e FROM pg_ls_dir(root || '/' || dir) e ORDER BY e LOOP
            IF (pg_stat_file(root || '/' || dir || '/' || entry)).isdir THEN
                pending := pending || (dir || '/' || entry);
            ELSE
                RETURN NEXT dir || '/' || entry;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- Every line of every exported (non-hidden) file, parsed.
CREATE FUNCTION test_helpers.exported_rows()
RETURNS TABLE (path text, line_number bigint, doc jsonb) LANGUAGE sql AS $$
    SELECT f, l.n, l.line::jsonb
    FROM test_helpers.export_files() f,
         LATERAL regexp_split_to_table(
             rtrim(pg_read_file(test_helpers.export_dir() || '/' || f), E'\n'),
             E'\n') WITH ORDINALITY AS l(line, n)
    WHERE f !~ '/\.[^/]*$'
$$;

-- Removes everything the export wrote.
CREATE FUNCTION test_helpers.remove_exports()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L',
                   'rm -rf ''' || test_helpers.export_dir() || '/exports''');
END
$$;

-- Empties the platform tables, the checkpoints and the export directory.
CREATE FUNCTION test_helpers.reset_all()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE public.tenants, public.interaction_history, interactions_cron.export_checkpoints,
             interactions_cron.export_intents;
    PERFORM test_helpers.remove_exports();
END
$$;

-- A run's result without the watermark, which changes from run to run.
CREATE FUNCTION test_helpers.stable(result jsonb)
RETURNS jsonb LANGUAGE sql AS $$ SELECT result - 'watermark' $$;

-- Replaces the absolute export directory in a message by <export_dir>, and
-- words three of PostgreSQL's errors as 15 does (16 reworded them, with the
-- same SQLSTATEs), so that one expected output serves every version.
CREATE FUNCTION test_helpers.masked(message text)
RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(
        replace(message, test_helpers.export_dir(), '<export_dir>'),
        '^permission denied to alter role$',
        'must be superuser to alter superuser roles or change superuser attribute'),
        '^permission denied to examine (".*")$',
        'must be superuser or have privileges of pg_read_all_settings to examine \1'),
        '\((-?[0-9]+) ms \.\. (-?[0-9]+) ms\)$', '(\1 .. \2)')
$$;

-- Rows of the history table that are not in exactly one exported line.
CREATE FUNCTION test_helpers.rows_not_exported_once()
RETURNS TABLE (id bigint, copies bigint) LANGUAGE sql AS $$
    SELECT h.id, count(r.doc)
    FROM public.interaction_history h
    LEFT JOIN test_helpers.exported_rows() r ON (r.doc->>'id')::bigint = h.id
    GROUP BY h.id
    HAVING count(r.doc) <> 1
    ORDER BY h.id
$$;

-- One row per tenant of a run's result.
CREATE FUNCTION test_helpers.outcomes(result jsonb)
RETURNS TABLE (tenant_id text, exported int, files int, file_path text,
               batch_full boolean, skipped boolean, error text)
LANGUAGE sql AS $$
    SELECT t->>'tenantId', (t->>'exported')::int, jsonb_array_length(t->'files'),
           t->>'filePath', (t->>'batchFull')::boolean, (t->>'skipped')::boolean,
           test_helpers.masked(t->>'error')
    FROM jsonb_array_elements(result->'tenants') t
$$;

-- Runs a statement and returns "SQLSTATE: message" of its error, or 'no error'.
CREATE FUNCTION test_helpers.error_of(statement text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || test_helpers.masked(SQLERRM);
END
$$;
