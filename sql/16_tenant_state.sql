-- A tenant's export state, to move it to another database (issue 13): what
-- tenant_state() returns, and what adopt_tenant_state() refuses.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
    (1, 'acme', '2026-03-30 10:00:00+00'), (2, 'acme', '2026-03-30 11:00:00+00');
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions()) ORDER BY 1;

-- The state: the checkpoint (its history included), no unfinished batch.
SELECT s->>'tenantId' AS tenant, s->'checkpoint'->>'last_id' AS last_id,
       s->'checkpoint'->>'rows_exported' AS rows_exported, s->'checkpoint' ? 'lake_epoch' AS has_history,
       s->'intent' AS intent
FROM interactions_cron.tenant_state('acme') s;
SELECT test_helpers.error_of($$SELECT interactions_cron.tenant_state('nobody')$$);

-- Adopting acme's state for acme again changes nothing.
SELECT r->>'ok' AS ok, r->>'intent' AS intent
FROM interactions_cron.adopt_tenant_state(interactions_cron.tenant_state('acme')) r;
-- beta has never exported: it may take a state (here acme's, renamed).
SELECT r->>'ok' AS ok FROM interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('acme'), '{tenantId}', '"beta"')) r;
SELECT tenant_id, last_id, rows_exported FROM interactions_cron.export_checkpoints ORDER BY 1;
-- Once moved, another position is refused without force, taken with it.
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('beta'), '{checkpoint,last_id}', '"1"'))$$);
SELECT r->>'force' AS force FROM interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('beta'), '{checkpoint,last_id}', '"1"'), force => true) r;
SELECT job, ok, result->>'tenantId' AS tenant FROM interactions_cron.job_runs
WHERE job = 'adopt_tenant_state' ORDER BY id;

-- Bad states: not ours, no checkpoint, an unknown tenant, an unfinished
-- batch in another lake (its files could not be undone here).
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state('{"tenantId": "acme"}')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state('{"tenantId": "acme", "format": 1}')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('acme'), '{tenantId}', '"nobody"'))$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(jsonb_set(
    interactions_cron.tenant_state('acme'), '{intent}',
    '{"token": "t", "storage": "local", "local_root": "/elsewhere", "files": [], "temporary_files": [], "row_count": 0}'))$$);
SELECT count(*) AS intents FROM interactions_cron.export_intents;
-- An intent whose files leave the tenant's directory, or name a directory
-- ('.' segment: every later export of the tenant would fail to remove it),
-- is refused when adopted, not only when the next export would undo it.
SELECT test_helpers.error_of(format($$SELECT interactions_cron.adopt_tenant_state(jsonb_set(
    interactions_cron.tenant_state('acme'), '{intent}', %L::jsonb))$$,
    jsonb_build_object('token', 't', 'storage', 'local', 'local_root', test_helpers.export_dir(),
                       'files', ARRAY[path],
                       'temporary_files', ARRAY[]::text[], 'row_count', 0, 'created_at', now())))
FROM unnest(ARRAY['exports/acme/interaction_history/../../beta/interaction_history/x.json',
                  'exports/acme/interaction_history/year=2026/month=03/day=06/.']) path;
SELECT count(*) AS intents FROM interactions_cron.export_intents;

-- Releasing hands the state over: refused while the tenant is exported here;
-- once it is out of the export, its checkpoint and intent are gone here.
SELECT test_helpers.error_of($$SELECT interactions_cron.tenant_state('acme', release => true)$$);
UPDATE tenants SET status = 'moving' WHERE id = 'acme';
SELECT s->'checkpoint'->>'last_id' AS handed_over_last_id
FROM interactions_cron.tenant_state('acme', release => true) s;
SELECT count(*) AS acme_checkpoints FROM interactions_cron.export_checkpoints WHERE tenant_id = 'acme';
SELECT test_helpers.reset_all();
