-- Files below export_dir: a symbolic link planted at any level (a tenant's
-- directory, a day's, the spool) is refused rather than followed, so nothing
-- is written or deleted outside export_dir; and an export_dir that other OS
-- users may write to is refused at once.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');
INSERT INTO interaction_history (id, tenant_id, created_at)
VALUES (1, 'acme', '2026-03-30 10:00:00+00'), (2, 'beta', '2026-03-30 10:00:00+00');

-- The helpers are in a schema of their own: the jobs refuse a session with
-- temporary objects (see 19_hostile_owners).
CREATE SCHEMA regress_local;
-- sh runs a shell command as the server's OS user, in export_dir (made
-- first, mode 0700, when the server's default one does not exist yet).
CREATE FUNCTION regress_local.sh(command text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L',
                   format('mkdir -p -m 700 %s && cd %s && %s',
                          test_helpers.export_dir(), test_helpers.export_dir(), command));
END
$$;
-- outside lists what is in the directory the links point to (next to export_dir).
CREATE FUNCTION regress_local.outside() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT f FROM pg_ls_dir(test_helpers.export_dir() || '/../exports_outside') f ORDER BY f
$$;
SELECT regress_local.sh('rm -rf ../exports_outside && mkdir ../exports_outside && echo keep > ../exports_outside/victim.txt');

-- A link at a tenant's directory: that tenant fails, the other one is exported.
SELECT regress_local.sh('mkdir -p exports && ln -s ../exports_outside exports/acme');
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT * FROM regress_local.outside();
SELECT status FROM interactions_cron.export_checkpoints WHERE tenant_id = 'acme';
SELECT regress_local.sh('rm exports/acme');

-- A link at a day's directory.  (Each case brings a row of its own, so that
-- it stands alone: code that followed the previous link exported the rows.)
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (11, 'acme', '2026-03-30 10:01:00+00');
SELECT regress_local.sh('mkdir -p exports/acme/interaction_history/year=2026/month=03 && ln -s ../../../../../../exports_outside exports/acme/interaction_history/year=2026/month=03/day=30');
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT * FROM regress_local.outside();
SELECT regress_local.sh('rm exports/acme/interaction_history/year=2026/month=03/day=30');

-- A link at the tenant's spool directory: following it would empty the
-- directory it points to.
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (12, 'acme', '2026-03-30 10:02:00+00');
SELECT regress_local.sh(format('rm -rf .spool/%1$s/acme && mkdir -p .spool/%1$s && ln -s ../../../exports_outside .spool/%1$s/acme',
                         current_database()));
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT * FROM regress_local.outside();
SELECT regress_local.sh(format('rm .spool/%s/acme', current_database()));

-- And at the spool itself.
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (13, 'acme', '2026-03-30 10:03:00+00');
SELECT regress_local.sh('mv .spool .spool.real && ln -s ../exports_outside .spool');
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT * FROM regress_local.outside();
SELECT regress_local.sh('rm .spool && mv .spool.real .spool');

-- Without the links the tenant is exported where it belongs.
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;
SELECT * FROM test_helpers.export_files() ORDER BY 1;

-- An export_dir that the group or others may write to is refused at once,
-- before any tenant; a dry run writes nothing and is not refused.
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (3, 'acme', '2026-03-30 11:00:00+00');
SELECT regress_local.sh('chmod 0777 .');
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SELECT regress_local.sh('chmod 0775 .');
SELECT test_helpers.error_of('SELECT interactions_cron.export_interactions()');
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions(dry_run => true));
SELECT regress_local.sh('chmod 0755 .');
SELECT count(*) AS files_after_refusals FROM test_helpers.export_files();
SELECT tenant_id, exported, error FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;

SELECT regress_local.sh('rm -rf ../exports_outside');
DROP SCHEMA regress_local CASCADE;
