-- The extension, the reference schema and the test helpers.
SET client_min_messages = warning;
CREATE EXTENSION interactions_cron;
\set ECHO none
-- The server's own settings never reach the tests (they may run against any
-- server, `make installcheck`): a folder of their own under the data
-- directory, local files, no compression.
SELECT format('ALTER DATABASE %I SET interactions_cron.export_dir = %L', current_database(),
              current_setting('data_directory') || '/interactions_cron_tests/' || current_database()),
       format('ALTER DATABASE %I SET interactions_cron.storage = local', current_database()),
       format('ALTER DATABASE %I SET interactions_cron.compression = none', current_database()) \gexec
\c
\i reference/schema.sql
\i test/sql/helpers.sql
\set ECHO all
RESET client_min_messages;

SELECT extname, extversion, extrelocatable, nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'interactions_cron';

-- The settings exist with their documented defaults (export_dir may be set by
-- the test cluster), once the library is loaded.
LOAD 'interactions_cron';
SELECT name, setting, context
FROM pg_settings
WHERE name LIKE 'interactions_cron.%' AND name <> 'interactions_cron.export_dir'
ORDER BY name;
SELECT test_helpers.export_dir() ~ '^/' AS export_dir_is_absolute,
       test_helpers.export_dir() = current_setting('data_directory') || '/interactions_cron_tests/' || current_database()
           AS tests_have_their_own_folder,
       current_setting('interactions_cron.storage') AS storage;
