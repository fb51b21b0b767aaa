-- A database that is not UTF8 gets one clear error before anything is
-- written: files and paths are UTF-8, and values are not converted.
\set regress_database :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regression_interactions_cron_latin1;
CREATE DATABASE regression_interactions_cron_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c regression_interactions_cron_latin1
SET client_min_messages = warning;
CREATE EXTENSION interactions_cron;
\i reference/schema.sql
RESET client_min_messages;
INSERT INTO tenants (id, name) VALUES ('caf' || chr(233), 'Café');
INSERT INTO interaction_history (tenant_id, created_at, metadata)
VALUES ('caf' || chr(233), '2026-03-30 10:00:00+00', '{"note": "d\u00e9j\u00e0 vu"}');
\set VERBOSITY default
SELECT interactions_cron.export_interactions();
SELECT count(*) AS checkpoints FROM interactions_cron.export_checkpoints;
SELECT count(*) AS failed_runs_recorded FROM interactions_cron.job_runs WHERE NOT ok;
\c :regress_database
DROP DATABASE regression_interactions_cron_latin1;
