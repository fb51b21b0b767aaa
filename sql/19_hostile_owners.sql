-- Owner code out of the caller's reach (issue 18, items 1 and 2).
-- 1. A caller's temporary objects: the jobs run table owners' code in the
--    caller's backend, whose temporary schema is searched first even by a
--    function with its own search_path; they refuse a session that has any.
-- 2. A partition owned by another role than its table: its triggers are
--    clones of the table owner's, so the jobs refuse such a table.
SELECT test_helpers.reset_all();
TRUNCATE public.suppressions, public.interaction_summaries, interactions_cron.job_runs;
SET interactions_cron.partitioned_tables = '';
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
VALUES ('acme', 'expired', now() - interval '1 day');

-- The owner (a superuser here) archives deleted suppressions, with its
-- search_path pinned as it should be.
CREATE TABLE public.suppression_archive (LIKE public.suppressions);
CREATE FUNCTION public.archive_suppression() RETURNS trigger LANGUAGE plpgsql SET search_path = public
AS $$ BEGIN INSERT INTO suppression_archive SELECT OLD.*; RETURN OLD; END $$;
CREATE TRIGGER archive BEFORE DELETE ON public.suppressions
    FOR EACH ROW EXECUTE FUNCTION public.archive_suppression();

-- An operator, with the rights the README asks for.
CREATE ROLE regress_exporter LOGIN;
GRANT interactions_cron_operator TO regress_exporter;
GRANT SELECT, DELETE ON public.suppressions, public.interaction_summaries TO regress_exporter;
GRANT SELECT ON public.tenants, public.interaction_history TO regress_exporter;
GRANT USAGE ON SCHEMA test_helpers TO regress_exporter;
GRANT USAGE ON SCHEMA public TO regress_exporter;

-- It shadows the archive with a temporary table whose trigger makes it a
-- superuser, and has the superuser's trigger insert there.
SET SESSION AUTHORIZATION regress_exporter;
CREATE TEMP TABLE suppression_archive (LIKE public.suppressions);
GRANT ALL ON pg_temp.suppression_archive TO PUBLIC;
CREATE FUNCTION pg_temp.pwn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER ROLE regress_exporter SUPERUSER'; RETURN NULL; END $$;
CREATE TRIGGER pwn BEFORE INSERT ON pg_temp.suppression_archive
    FOR EACH ROW EXECUTE FUNCTION pg_temp.pwn();
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
-- Every job refuses that session, before any owner's code runs.
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('acme')$$);
RESET SESSION AUTHORIZATION;
SELECT rolsuper AS exporter_is_superuser FROM pg_roles WHERE rolname = 'regress_exporter';
SELECT count(*) AS suppressions_kept FROM public.suppressions;
SELECT count(*) AS archived FROM public.suppression_archive;
SELECT job, ok, error FROM interactions_cron.job_runs ORDER BY id;

-- Through export_status: a tenants view whose owner function reads a table
-- that the caller shadows with a temporary view.
CREATE TABLE public.listed_tenants (id text);
INSERT INTO public.listed_tenants VALUES ('acme');
CREATE FUNCTION public.is_listed(tenant text) RETURNS boolean LANGUAGE sql STABLE SET search_path = public
AS $$ SELECT EXISTS (SELECT 1 FROM listed_tenants l WHERE l.id = tenant) $$;
CREATE VIEW public.listed_tenants_view AS
    SELECT t.id, t.name, t.status FROM public.tenants t WHERE public.is_listed(t.id);
GRANT SELECT ON public.listed_tenants_view TO regress_exporter;
SET interactions_cron.tenants_table = 'public.listed_tenants_view';
SET SESSION AUTHORIZATION regress_exporter;
CREATE FUNCTION pg_temp.pwn_in_view() RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER ROLE regress_exporter SUPERUSER'; RETURN 'acme'; END $$;
CREATE TEMP VIEW listed_tenants AS SELECT pg_temp.pwn_in_view() AS id;
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
RESET SESSION AUTHORIZATION;
SELECT rolsuper AS exporter_is_superuser FROM pg_roles WHERE rolname = 'regress_exporter';

-- Without temporary objects (DISCARD TEMP), the same session runs the jobs,
-- and the owner's trigger archives into the owner's table.
SET SESSION AUTHORIZATION regress_exporter;
DISCARD TEMP;
SELECT tenant_id, rows_waiting FROM interactions_cron.export_status;
SELECT interactions_cron.cleanup()->'cleaned'->'expiredSuppressions' AS expired_suppressions;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS archived FROM public.suppression_archive;
RESET interactions_cron.tenants_table;

-- Owner code that plants a temporary function in the caller's (existing,
-- empty) temporary schema (a security-restricted operation refuses only
-- temporary tables and types): the job fails and the function is gone.
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
VALUES ('acme', 'expired again', now() - interval '1 day');
CREATE OR REPLACE FUNCTION public.archive_suppression() RETURNS trigger LANGUAGE plpgsql SET search_path = public
AS $$ BEGIN CREATE FUNCTION pg_temp.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'; RETURN OLD; END $$;
SET SESSION AUTHORIZATION regress_exporter;
SELECT count(*) AS temporary_objects FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema();
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT count(*) AS temporary_objects FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema();
RESET SESSION AUTHORIZATION;
SELECT count(*) AS suppressions_kept FROM public.suppressions;
DROP TRIGGER archive ON public.suppressions;
DROP FUNCTION public.archive_suppression();
DROP VIEW public.listed_tenants_view;
DROP FUNCTION public.is_listed(text);
DROP TABLE public.suppression_archive, public.listed_tenants;
DELETE FROM public.suppressions;

-- 2. A partitioned table of an ordinary role, with a harmless row trigger;
-- a DBA creates one of its partitions, which the DBA then owns.
CREATE ROLE regress_app NOLOGIN;
GRANT USAGE, CREATE ON SCHEMA public TO regress_app;
GRANT SELECT ON public.suppressions, public.tenants TO regress_app;
SET ROLE regress_app;
CREATE TABLE public.supp (LIKE public.suppressions) PARTITION BY LIST (tenant_id);
CREATE FUNCTION public.supp_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
CREATE TRIGGER supp_deleted BEFORE DELETE ON public.supp FOR EACH ROW EXECUTE FUNCTION public.supp_deleted();
RESET ROLE;
CREATE TABLE public.supp_t1 PARTITION OF public.supp FOR VALUES IN ('acme');
INSERT INTO public.supp (id, tenant_id, contact_id, created_at, expires_at)
VALUES (1, 'acme', 'expired', now(), now() - interval '1 day');
-- The table's owner then makes its trigger escalate.
SET ROLE regress_app;
CREATE OR REPLACE FUNCTION public.supp_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN ALTER ROLE regress_app SUPERUSER; RETURN OLD; END $$;
RESET ROLE;
-- Any caller's cleanup() refuses the table, whose partition's rows would
-- be deleted as the DBA, with the table owner's trigger.
SET interactions_cron.suppressions_table = 'public.supp';
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT rolsuper AS app_is_superuser FROM pg_roles WHERE rolname = 'regress_app';
SELECT count(*) AS rows_kept FROM public.supp;
-- Once the partition is the table owner's, cleanup() deletes as that owner,
-- whose trigger's ALTER ROLE is then refused.
ALTER TABLE public.supp_t1 OWNER TO regress_app;
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT rolsuper AS app_is_superuser FROM pg_roles WHERE rolname = 'regress_app';
CREATE OR REPLACE FUNCTION public.supp_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
SELECT interactions_cron.cleanup()->'cleaned'->'expiredSuppressions' AS expired_suppressions;
RESET interactions_cron.suppressions_table;

-- The export and export_status read a tenants table of mixed owners as its
-- owner too: refused the same way.
SET ROLE regress_app;
CREATE TABLE public.tenants_by_id (LIKE public.tenants) PARTITION BY LIST (id);
RESET ROLE;
CREATE TABLE public.tenants_acme PARTITION OF public.tenants_by_id FOR VALUES IN ('acme');
INSERT INTO public.tenants_by_id SELECT * FROM public.tenants;
SET interactions_cron.tenants_table = 'public.tenants_by_id';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
ALTER TABLE public.tenants_acme OWNER TO regress_app;
SELECT tenant_id, rows_waiting FROM interactions_cron.export_status;
RESET interactions_cron.tenants_table;

DROP TABLE public.supp, public.tenants_by_id;
DROP FUNCTION public.supp_deleted();
REVOKE ALL ON SCHEMA public, test_helpers FROM regress_app, regress_exporter;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM regress_app, regress_exporter;
DROP ROLE regress_app, regress_exporter;
RESET interactions_cron.partitioned_tables;
SELECT test_helpers.reset_all();
