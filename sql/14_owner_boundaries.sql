-- Privilege boundaries (issue 10, items 1 and 3).  The jobs run each
-- statement on a platform table as that table's owner in a security-restricted
-- operation, so a table owner's code (a trigger, a view, a function) never runs
-- with the caller's rights; callers must hold the rights themselves; and the
-- operator role runs the jobs and reads the history but cannot write it.
SELECT test_helpers.reset_all();
TRUNCATE public.suppressions, public.interaction_summaries, interactions_cron.job_runs;
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (1, 'acme', '2026-03-30 10:00:00+00');
INSERT INTO public.suppressions (tenant_id, contact_id, expires_at)
VALUES ('acme', 'expired', now() - interval '1 day');

-- An ordinary role that owns a platform table and plants code in it.
CREATE ROLE regress_app_owner NOLOGIN;
GRANT USAGE, CREATE ON SCHEMA public TO regress_app_owner;
ALTER TABLE public.suppressions OWNER TO regress_app_owner;
GRANT SELECT ON public.tenants, public.interaction_history TO regress_app_owner;
SET ROLE regress_app_owner;
CREATE FUNCTION public.become_superuser() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE regress_app_owner SUPERUSER;
    RETURN true;
END
$$;
CREATE FUNCTION public.become_superuser_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.become_superuser();
    RETURN OLD;
END
$$;
CREATE TRIGGER become_superuser BEFORE DELETE ON public.suppressions
    FOR EACH ROW EXECUTE FUNCTION public.become_superuser_on_delete();
RESET ROLE;

-- cleanup() as a superuser (pg_cron, the HTTP shim): the trigger runs as
-- regress_app_owner, its ALTER ROLE is refused, cleanup fails, and nothing is deleted.
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT rolsuper AS app_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_app_owner';
SELECT count(*) AS suppressions_kept FROM public.suppressions;
SELECT job, ok, test_helpers.masked(error) AS error FROM interactions_cron.job_runs ORDER BY id DESC LIMIT 1;
DROP TRIGGER become_superuser ON public.suppressions;

-- The same owner, an operator too, has its trigger call reset_checkpoint(...,
-- force => true) inside the superuser's cleanup(): the call would be recorded
-- as the superuser's.  The jobs refuse to start inside a security-restricted
-- operation, so the checkpoint stays and no reset is recorded.
GRANT interactions_cron_operator TO regress_app_owner;
SET ROLE regress_app_owner;
CREATE FUNCTION public.skip_rows_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM interactions_cron.reset_checkpoint('acme', 'infinity', true);
    RETURN OLD;
END
$$;
CREATE TRIGGER skip_rows BEFORE DELETE ON public.suppressions
    FOR EACH ROW EXECUTE FUNCTION public.skip_rows_on_delete();
RESET ROLE;
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
SELECT count(*) AS checkpoints_moved_forward FROM interactions_cron.export_checkpoints
WHERE last_created_at = 'infinity';
SELECT count(*) AS resets_recorded FROM interactions_cron.job_runs WHERE job = 'reset_checkpoint';
DROP TRIGGER skip_rows ON public.suppressions;
DROP FUNCTION public.skip_rows_on_delete();
REVOKE interactions_cron_operator FROM regress_app_owner;

-- The export's tenant list: a view with a function, owned by regress_app_owner.
CREATE VIEW public.tenants_view AS
    SELECT t.id, t.name, t.status FROM public.tenants t WHERE public.become_superuser();
ALTER VIEW public.tenants_view OWNER TO regress_app_owner;
SET interactions_cron.tenants_table = 'public.tenants_view';
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SELECT rolsuper AS app_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_app_owner';
-- Reading export_status through that view: a superuser's read runs the view
-- as regress_app_owner too, so the status fails and the role stays ordinary.
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
SELECT rolsuper AS app_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_app_owner';
RESET interactions_cron.tenants_table;
DROP VIEW public.tenants_view;
-- And through a history view whose function escalates: it runs as regress_app_owner
-- there too, and its ALTER ROLE is refused.
CREATE VIEW public.history_status_view AS
    SELECT h.* FROM public.interaction_history h WHERE public.become_superuser();
ALTER VIEW public.history_status_view OWNER TO regress_app_owner;
SET interactions_cron.history_table = 'public.history_status_view';
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
SELECT rolsuper AS app_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_app_owner';
RESET interactions_cron.history_table;
DROP VIEW public.history_status_view;

-- The per-tenant batch query, in the export's workers: a history view whose
-- function escalates only there (not in the calling backend, whose PID the
-- workers see in the caller's settings).  The tenant fails, the role stays
-- ordinary, the checkpoint does not move.
SELECT set_config('test.caller_pid', pg_backend_pid()::text, false) IS NOT NULL AS caller_pid_set;
CREATE FUNCTION public.become_superuser_in_workers() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.pg_backend_pid()::text <> pg_catalog.current_setting('test.caller_pid') THEN
        RETURN public.become_superuser();
    END IF;
    RETURN true;
END
$$;
ALTER FUNCTION public.become_superuser_in_workers() OWNER TO regress_app_owner;
CREATE VIEW public.history_view AS
    SELECT h.* FROM public.interaction_history h WHERE public.become_superuser_in_workers();
ALTER VIEW public.history_view OWNER TO regress_app_owner;
SET interactions_cron.history_table = 'public.history_view';
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT rolsuper AS app_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_app_owner';
SELECT last_created_at, status FROM interactions_cron.export_checkpoints;
RESET interactions_cron.history_table;
DROP VIEW public.history_view;
DROP FUNCTION public.become_superuser_in_workers();

-- The operator role, created by the extension: NOLOGIN, not a superuser.
SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb
FROM pg_roles WHERE rolname = 'interactions_cron_operator';

-- A member that logs in.  It reads the platform tables and deletes expired
-- rows itself (the jobs act as the owners only for what the caller may do).
CREATE ROLE regress_ops_login LOGIN;
CREATE ROLE regress_ops_group NOLOGIN;
GRANT interactions_cron_operator TO regress_ops_group;
GRANT regress_ops_group TO regress_ops_login;
GRANT USAGE ON SCHEMA test_helpers TO regress_ops_group;
GRANT SELECT ON public.tenants, public.interaction_history TO regress_ops_group;
SET interactions_cron.partitioned_tables = '';  -- creating partitions needs their owner's role
SET SESSION AUTHORIZATION regress_ops_login;
SET ROLE regress_ops_group;

-- Without rights on suppressions, cleanup() refuses before deleting anything,
-- rather than delete as regress_app_owner.
SELECT test_helpers.error_of('SELECT interactions_cron.cleanup()');
RESET ROLE;
RESET SESSION AUTHORIZATION;
GRANT SELECT, DELETE ON public.suppressions, public.interaction_summaries TO regress_ops_group;
SET SESSION AUTHORIZATION regress_ops_login;
SET ROLE regress_ops_group;

-- It runs both jobs and replays a tenant.
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions());
SELECT interactions_cron.cleanup()->'cleaned'->'expiredSuppressions' AS expired_suppressions;
SELECT interactions_cron.reset_checkpoint('acme');
-- It reads the status and the history.
SELECT tenant_id, last_created_at FROM interactions_cron.export_checkpoints;
SELECT tenant_id, rows_waiting FROM interactions_cron.export_status;
-- An operator on the reader's search_path never runs in the status's
-- queries, which run as the tables' and the extension's owners: the
-- function has its search_path pinned, as every function of the extension.
RESET ROLE;
RESET SESSION AUTHORIZATION;
CREATE SCHEMA evil;
CREATE FUNCTION evil.texteq_ran(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the reader''s operator ran as %', current_user;
END
$$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq_ran);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
SET SESSION AUTHORIZATION regress_ops_login;
SET ROLE regress_ops_group;
SET search_path = evil, pg_catalog, public;
SELECT count(*) AS status_rows FROM interactions_cron.export_status;
RESET search_path;
RESET ROLE;
RESET SESSION AUTHORIZATION;
DROP SCHEMA evil CASCADE;
SELECT count(*) AS functions_without_pinned_search_path
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'interactions_cron'
WHERE NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}';
SET SESSION AUTHORIZATION regress_ops_login;
SET ROLE regress_ops_group;
-- run_by is the role that logged in, not the role it SET ROLE to.
SELECT job, ok, run_by FROM interactions_cron.job_runs ORDER BY id;
-- A failed run is recorded with the session user too.
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('nobody')$$);
SELECT job, ok, run_by, error FROM interactions_cron.job_runs ORDER BY id DESC LIMIT 1;

-- It cannot write the history or the checkpoints itself.
SELECT test_helpers.error_of($$INSERT INTO interactions_cron.job_runs
    (job, started_at, finished_at, ok, run_by) VALUES ('export', now(), now(), true, 'postgres')$$);
SELECT test_helpers.error_of($$UPDATE interactions_cron.export_checkpoints
    SET last_created_at = 'infinity'$$);
SELECT test_helpers.error_of($$DELETE FROM interactions_cron.job_runs$$);
SELECT test_helpers.error_of($$SELECT 1 FROM interactions_cron.export_checkpoints FOR UPDATE$$);

-- Nor read a platform table through the export that it may not read: the
-- export would read it as its owner.
RESET ROLE;
RESET SESSION AUTHORIZATION;
REVOKE SELECT ON public.interaction_history FROM regress_ops_group;
SET SESSION AUTHORIZATION regress_ops_login;
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
-- Nor through the status, which counts its rows as the owner too.
SELECT test_helpers.error_of('SELECT count(*) FROM interactions_cron.export_status');
RESET SESSION AUTHORIZATION;

-- A role that row-level security limits on a platform table is refused too:
-- the owner would see every row.
GRANT SELECT ON public.interaction_history TO regress_ops_group;
ALTER TABLE public.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_acme ON public.tenants USING (id = 'acme');
SET SESSION AUTHORIZATION regress_ops_login;
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
RESET SESSION AUTHORIZATION;
DROP POLICY only_acme ON public.tenants;
ALTER TABLE public.tenants DISABLE ROW LEVEL SECURITY;

RESET interactions_cron.partitioned_tables;
ALTER TABLE public.suppressions OWNER TO CURRENT_USER;
DROP FUNCTION public.become_superuser_on_delete();
DROP FUNCTION public.become_superuser();
REVOKE ALL ON SCHEMA public, test_helpers FROM regress_app_owner, regress_ops_group;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM regress_app_owner, regress_ops_group;
DROP ROLE regress_app_owner, regress_ops_login, regress_ops_group;
