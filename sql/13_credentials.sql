-- S3 credentials (and the container authorization token, a secret of the
-- same kind) are accepted only from the server's configuration files
-- (postgresql.conf, ALTER SYSTEM): every statement that would leave them
-- where other roles can read them is refused, and no other role can read
-- them through a setting, a view or a catalog.
LOAD 'interactions_cron';
CREATE ROLE regress_ic_reader;
CREATE ROLE regress_ic_settings_reader IN ROLE pg_read_all_settings;
GRANT USAGE ON SCHEMA test_helpers TO regress_ic_reader, regress_ic_settings_reader;

SELECT setting, statement, test_helpers.error_of(format(template, setting, current_database())) AS error
FROM unnest(ARRAY['interactions_cron.s3_access_key_id', 'interactions_cron.s3_secret_access_key',
                  'interactions_cron.s3_container_authorization_token']) setting,
     (VALUES ('ALTER DATABASE', 'ALTER DATABASE %2$I SET %1$s = ''AKIAEXAMPLE'''),
             ('ALTER ROLE', 'ALTER ROLE regress_ic_reader SET %1$s = ''AKIAEXAMPLE'''),
             ('ALTER ROLE IN DATABASE', 'ALTER ROLE regress_ic_reader IN DATABASE %2$I SET %1$s = ''AKIAEXAMPLE'''),
             ('ALTER ROLE ALL', 'ALTER ROLE ALL SET %1$s = ''AKIAEXAMPLE'''),
             ('CREATE FUNCTION SET', 'CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql SET %1$s = ''AKIAEXAMPLE'' AS ''SELECT 1'''),
             ('SET', 'SET %1$s = ''AKIAEXAMPLE'''),
             ('set_config', 'SELECT set_config(''%1$s'', ''AKIAEXAMPLE'', false)')) AS s(statement, template)
ORDER BY 1, 2;
-- The refusal says where to put them instead.
ALTER DATABASE :"DBNAME" SET interactions_cron.s3_secret_access_key = 'AKIAEXAMPLE';
SELECT count(*) AS credentials_stored
FROM pg_db_role_setting, unnest(setconfig) c WHERE c LIKE 'interactions_cron.s3_%';
-- Clearing them is fine.
SET interactions_cron.s3_secret_access_key = '';
RESET interactions_cron.s3_secret_access_key;

-- A role without pg_read_all_settings cannot see them at all; one with it
-- sees only whether they are set; pg_file_settings, which shows the
-- configuration files' raw lines, is for superusers only.
SET ROLE regress_ic_reader;
SELECT test_helpers.error_of('SHOW interactions_cron.s3_secret_access_key');
SELECT test_helpers.error_of($$SELECT current_setting('interactions_cron.s3_secret_access_key')$$);
SELECT count(*) AS listed_in_pg_settings FROM pg_settings
WHERE name IN ('interactions_cron.s3_access_key_id', 'interactions_cron.s3_secret_access_key',
               'interactions_cron.s3_container_authorization_token');
SELECT test_helpers.error_of('SELECT count(*) FROM pg_file_settings');
SET ROLE regress_ic_settings_reader;
SELECT count(*) AS listed_in_pg_settings FROM pg_settings
WHERE name IN ('interactions_cron.s3_access_key_id', 'interactions_cron.s3_secret_access_key',
               'interactions_cron.s3_container_authorization_token');
SELECT test_helpers.error_of('SELECT count(*) FROM pg_file_settings');
RESET ROLE;

-- PostgreSQL cannot check a value set in a session that has not loaded the
-- library (hence: preload it): such a value, or one stored by 1.0, is
-- refused with a warning when the library loads, and never used.
\c
ALTER DATABASE :"DBNAME" SET interactions_cron.s3_secret_access_key = 'stored-before';
\c
LOAD 'interactions_cron';
SHOW interactions_cron.s3_secret_access_key;
ALTER DATABASE :"DBNAME" RESET interactions_cron.s3_secret_access_key;

REVOKE USAGE ON SCHEMA test_helpers FROM regress_ic_reader, regress_ic_settings_reader;
DROP ROLE regress_ic_reader, regress_ic_settings_reader;
