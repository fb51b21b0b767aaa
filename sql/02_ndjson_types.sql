-- Every column type is written as valid JSON of the right kind, whatever the
-- session's TimeZone, DateStyle or IntervalStyle.
SELECT test_helpers.reset_all();
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';

CREATE TABLE public.typed_history (
    id          bigint NOT NULL,
    tenant_id   text NOT NULL,
    created_at  timestamptz NOT NULL,
    small       smallint,
    whole       integer,
    exact       numeric,
    exact_nan   numeric,
    dbl         double precision,
    dbl_inf     double precision,
    dbl_ninf    double precision,
    dbl_nan     real,
    flag        boolean,
    doc         json,
    docb        jsonb,
    local_ts    timestamp,
    tstz_inf    timestamptz,
    day         date,
    span        interval,
    tags        text[],
    grid        integer[],
    empty_arr   integer[],
    stamps      timestamptz[],
    uid         uuid,
    raw         bytea,
    note        text,
    missing     text,
    "odd ""key"" \name" text
);
INSERT INTO tenants VALUES ('types', 'Types', 'active');
INSERT INTO public.typed_history VALUES (
    1, 'types', '2026-03-30 07:30:00.123456+05:30',
    -32768, 2147483647, 12345678901234567890.000000001, 'NaN',
    0.1, 'Infinity', '-Infinity', 'NaN',
    true, E'{"a": 1,\n  "b": [true, null]}', '{"z": {"y": [1, 2.5, "x"]}, "a": null}',
    '2026-03-30 01:02:03.5', 'infinity', '2026-03-30', '1 day 2 hours 3 minutes 4.5 seconds',
    ARRAY['plain', 'with "quotes"', NULL, E'back\\slash'], ARRAY[[1, 2], [3, NULL]], '{}',
    ARRAY['2026-01-01 00:00:00+00'::timestamptz],
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10',
    E'quote " backslash \\ newline \n tab \t cr \r bell \x07 unicode üñí€ 😀', NULL, 'odd');

SET interactions_cron.history_table = 'public.typed_history';
SELECT tenant_id, exported, files, file_path FROM test_helpers.outcomes(interactions_cron.export_interactions());

-- The exact line written, and that it is one valid JSON object with a newline.
SELECT replace(pg_read_file(test_helpers.export_dir() || '/' || f), E'\n', '<LF>') AS line
FROM test_helpers.export_files() f;
SELECT jsonb_typeof(doc) AS kind, (SELECT count(*) FROM jsonb_object_keys(doc)) AS keys
FROM test_helpers.exported_rows();

-- Values read back equal the originals.
SELECT (r.doc->>'note') = h.note AS note_round_trips,
       (r.doc->>'created_at')::timestamptz = h.created_at AS created_at_round_trips,
       (r.doc->'docb') = h.docb AS jsonb_round_trips,
       (r.doc->'doc') = h.doc::jsonb AS json_round_trips,
       (r.doc->>'exact')::numeric = h.exact AS numeric_round_trips,
       (r.doc->>'dbl')::float8 = h.dbl AS float_round_trips,
       (r.doc->>'odd "key" \name') = h."odd ""key"" \name" AS odd_key_round_trips,
       jsonb_typeof(r.doc->'grid') AS grid_kind,
       jsonb_typeof(r.doc->'flag') AS flag_kind,
       jsonb_typeof(r.doc->'missing') AS missing_kind
FROM test_helpers.exported_rows() r JOIN public.typed_history h ON h.id = (r.doc->>'id')::bigint;

-- jsonb values of every shape are written by walking them: each one reads
-- back equal, scalars at the top included, and the line has no whitespace
-- outside strings.  Floats read back equal whatever extra_float_digits.
SELECT test_helpers.reset_all();
INSERT INTO tenants VALUES ('types', 'Types', 'active');
DELETE FROM public.typed_history;
INSERT INTO public.typed_history (id, tenant_id, created_at, docb, dbl, dbl_nan)
SELECT n, 'types', timestamptz '2026-03-30 02:00:00+00' + n * interval '1 second', v::jsonb,
       0.1::float8 + 0.2 * n, 1.1e-7::real * n
FROM (VALUES (1, '"top \"scalar\" \\ \n \u0001 é"'), (2, '-1.50e3'), (3, 'true'), (4, 'null'),
             (5, '{}'), (6, '[]'), (7, '[{}, [], [[]], {"": ""}]'),
             (8, '{"k\"ey\n": {"nested": [1, {"deep": [null, false, "t\tab"]}]}, "b": 0.000001}'),
             (9, '[1, "two", 3.0, {"four": [5]}]')) AS v(n, v);
SET extra_float_digits = 0;
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions());
RESET extra_float_digits;
SELECT (r.doc->>'id')::int AS id, (r.doc->'docb') = h.docb AS round_trips, jsonb_typeof(r.doc->'docb') AS kind,
       (r.doc->'dbl')::float8 = h.dbl AND (r.doc->'dbl_nan')::float4 = h.dbl_nan AS floats_round_trip
FROM test_helpers.exported_rows() r JOIN public.typed_history h ON h.id = (r.doc->>'id')::bigint
ORDER BY 1;
SELECT count(*) AS lines_with_whitespace_outside_strings
FROM regexp_split_to_table(
       (SELECT string_agg(pg_read_file(test_helpers.export_dir() || '/' || f), '')
        FROM test_helpers.export_files() f), E'\n') AS line
WHERE regexp_replace(line, '"([^"\\]|\\.)*"', '', 'g') ~ '\s';

RESET interactions_cron.history_table;
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;
DROP TABLE public.typed_history;
