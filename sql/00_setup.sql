-- The extension, the reference schema and the test helpers.
SET client_min_messages = warning;
CREATE EXTENSION interactions_cron;
\set ECHO none
\i reference/schema.sql
\i test/sql/helpers.sql
\set ECHO all
RESET client_min_messages;

SELECT extname, extversion, extrelocatable, nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'interactions_cron';

-- The settings exist with their documented defaults (export_dir may be set by
-- the test cluster).
SELECT name, setting, context
FROM pg_settings
WHERE name LIKE 'interactions_cron.%' AND name <> 'interactions_cron.export_dir'
ORDER BY name;
SELECT test_helpers.export_dir() ~ '^/' AS export_dir_is_absolute;
