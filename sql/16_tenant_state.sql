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

-- Adopting acme's state for acme again keeps its position.
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
-- The state names the origin of this database's files, with the history it
-- exports in, then those its checkpoint was adopted from until the tenant
-- is exported here; the adoption records them on the checkpoint.
SELECT s->'origins'->>0 = h.origin_prefix || '/' || h.history_id AS first_origin_is_this_history,
       jsonb_array_length(s->'origins') AS origins,
       (SELECT adopted_from FROM interactions_cron.export_checkpoints WHERE tenant_id = 'beta')
           = ARRAY(SELECT jsonb_array_elements_text(s->'origins')) AS adoption_records_them
FROM interactions_cron.tenant_state('acme') s
JOIN interactions_cron.export_histories h ON h.history_id::text = split_part(s->'origins'->>0, '/', 4);
SELECT r->>'ok' AS ok FROM interactions_cron.adopt_tenant_state(jsonb_set(
    interactions_cron.tenant_state('beta'), '{origins}', '["1/2/3/00000000-0000-4000-8000-000000000001"]'),
    force => true) r;
SELECT s->'origins'->>1 AS inherited_origin FROM interactions_cron.tenant_state('beta') s;
-- A database is named once, with the history it released the tenant in
-- last: its files of that history never look lost.
SELECT r->>'ok' AS ok FROM interactions_cron.adopt_tenant_state(jsonb_set(
    interactions_cron.tenant_state('beta'), '{origins}',
    '["1/2/3/00000000-0000-4000-8000-000000000002", "1/2/3/00000000-0000-4000-8000-000000000001"]'),
    force => true) r;
SELECT (s->'origins') - 0 AS inherited_origins FROM interactions_cron.tenant_state('beta') s;
-- A state made by hand that names a database twice is recorded with the
-- first, as a state taken here would name it.
SELECT r->>'ok' AS ok FROM interactions_cron.adopt_tenant_state(jsonb_set(
    interactions_cron.tenant_state('beta'), '{origins}',
    '["1/2/3/00000000-0000-4000-8000-000000000003", "1/2/3/00000000-0000-4000-8000-000000000004"]'),
    force => true) r;
SELECT adopted_from AS database_named_once FROM interactions_cron.export_checkpoints WHERE tenant_id = 'beta';
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (3, 'beta', '2026-03-30 12:00:00+00');
SELECT tenant_id, exported FROM test_helpers.outcomes(interactions_cron.export_interactions(tenant_id => 'beta'));
SELECT adopted_from IS NULL AS exported_here_forgets_sources, jsonb_array_length(s->'origins') AS origins
FROM interactions_cron.export_checkpoints, interactions_cron.tenant_state('beta') s WHERE tenant_id = 'beta';

-- Bad states: not ours, no checkpoint, an unknown tenant, an unfinished
-- batch in another lake (its files could not be undone here).
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state('{"tenantId": "acme"}')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state('{"tenantId": "acme", "format": 1}')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('acme'), '{origins}', '["1/2/3/../../x"]'))$$);
-- A database OID past 32 bits, a system identifier past 64: no origin of ours.
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('acme'), '{origins}', '["1/4294967296/3/00000000-0000-4000-8000-000000000001"]'))$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('acme'), '{origins}', '["18446744073709551616/2/3/00000000-0000-4000-8000-000000000001"]'))$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.adopt_tenant_state(
    jsonb_set(interactions_cron.tenant_state('acme'), '{origins}', '"1/2/3/00000000-0000-4000-8000-000000000001"'))$$);
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
-- once it is out of the export, its intent is gone here and its checkpoint
-- is a released marker: not taken twice, not exported here when the filter
-- lets the tenant in again, not reset without force, until a state is
-- adopted here.
SELECT test_helpers.error_of($$SELECT interactions_cron.tenant_state('acme', release => true)$$);
UPDATE tenants SET status = 'moving' WHERE id = 'acme';
SELECT s->'checkpoint'->>'last_id' AS handed_over_last_id
FROM interactions_cron.tenant_state('acme', release => true) s;
SELECT status AS acme_checkpoint, (SELECT count(*) FROM interactions_cron.export_intents) AS intents
FROM interactions_cron.export_checkpoints WHERE tenant_id = 'acme';
SELECT test_helpers.error_of($$SELECT interactions_cron.tenant_state('acme')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.reset_checkpoint('acme')$$);
UPDATE tenants SET status = 'active' WHERE id = 'acme';
INSERT INTO interaction_history (id, tenant_id, created_at) VALUES (9999, 'acme', '2026-04-01 00:00:00+00');
SELECT r->'tenants'->0->>'reason' AS released_tenant, r->'totalExported' AS exported
FROM interactions_cron.export_interactions(tenant_id => 'acme') r;
UPDATE tenants SET status = 'moving' WHERE id = 'acme';
SELECT test_helpers.reset_all();
