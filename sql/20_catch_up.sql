-- Catch-up within a time budget: with max_runtime, tenants whose batch was
-- full get further batches, round robin, until caught up or the budget is
-- spent; without one, one batch per tenant per call, as the seed says.
SELECT test_helpers.reset_all();
INSERT INTO tenants (id, name) VALUES ('busy', 'Busy'), ('quiet', 'Quiet'), ('steady', 'Steady');
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT g, 'busy', '2026-03-30 02:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 45) g;
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT 100 + g, 'steady', '2026-03-30 03:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 15) g;

-- The order in which batches are written: each batch commits one intent.
CREATE TABLE test_helpers.batch_order (n bigserial, tenant_id text);
CREATE FUNCTION test_helpers.note_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_helpers.batch_order (tenant_id) VALUES (NEW.tenant_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER note_batch AFTER INSERT ON interactions_cron.export_intents
    FOR EACH ROW EXECUTE FUNCTION test_helpers.note_batch();

-- Off by default: one batch per tenant; a full batch is not caught up.
SET interactions_cron.batch_size = 10;
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       jsonb_array_length(t->'files') AS files, t->'caughtUp' AS caught_up, t->'batchFull' AS batch_full
FROM jsonb_array_elements(interactions_cron.export_interactions()->'tenants') t ORDER BY 1;
SHOW interactions_cron.max_runtime;

-- A budget that is spent before any batch ends: every tenant still gets its
-- first batch (nobody is starved, call after call), and no further batch
-- starts.
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       t->'caughtUp' AS caught_up
FROM jsonb_array_elements(interactions_cron.export_interactions(max_runtime => '1 microsecond')->'tenants') t
ORDER BY 1;

-- A dry run reads one batch per tenant, whatever the budget: it moves no
-- checkpoint, so a further batch would read the same rows again.
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       t->'caughtUp' AS caught_up
FROM jsonb_array_elements(interactions_cron.export_interactions(dry_run => true, max_runtime => '1 hour')->'tenants') t
ORDER BY 1;

-- An ample budget drains every tenant to the call's watermark, and the
-- result counts all its batches.  One worker, so that the order is the
-- queue's: every tenant's next batch comes before anyone's batch after it.
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT 115 + g, 'steady', '2026-03-30 03:30:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 25) g;
SET interactions_cron.max_workers = 1;
TRUNCATE test_helpers.batch_order;
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       jsonb_array_length(t->'files') AS files, t->'caughtUp' AS caught_up, t->'batchFull' AS batch_full
FROM jsonb_array_elements(interactions_cron.export_interactions(max_runtime => '1 hour')->'tenants') t
ORDER BY 1;
SELECT string_agg(tenant_id, ' ' ORDER BY n) AS batch_order FROM test_helpers.batch_order;
SELECT * FROM test_helpers.rows_not_exported_once();
SELECT tenant_id, rows_exported, files_written FROM interactions_cron.export_checkpoints ORDER BY 1;

-- A backlog that ends exactly at a batch boundary: the last batch is full,
-- the next finds nothing and says the tenant is caught up.
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT 200 + g, 'quiet', '2026-03-30 04:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 20) g;
TRUNCATE test_helpers.batch_order;
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       t->'caughtUp' AS caught_up
FROM jsonb_array_elements(interactions_cron.export_interactions(max_runtime => '1 hour')->'tenants') t
ORDER BY 1;
SELECT string_agg(tenant_id, ' ' ORDER BY n) AS batch_order FROM test_helpers.batch_order;

-- The setting gives every call the budget; the argument overrides it, '0'
-- turning it off for one call.
INSERT INTO interaction_history (id, tenant_id, created_at)
SELECT 300 + g, 'busy', '2026-03-30 05:00:00+00'::timestamptz + g * interval '1 second'
FROM generate_series(1, 25) g;
SET interactions_cron.max_runtime = '1h';
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       t->'caughtUp' AS caught_up
FROM jsonb_array_elements(interactions_cron.export_interactions(tenant_id => 'busy', max_runtime => '0')->'tenants') t;
SELECT t->>'tenantId' AS tenant, t->'exported' AS exported, t->'batches' AS batches,
       t->'caughtUp' AS caught_up
FROM jsonb_array_elements(interactions_cron.export_interactions(tenant_id => 'busy')->'tenants') t;
RESET interactions_cron.max_runtime;
SELECT * FROM test_helpers.rows_not_exported_once();

-- Budgets that are not one.
SELECT test_helpers.error_of($$SELECT interactions_cron.export_interactions(max_runtime => '-1 second')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.export_interactions(max_runtime => '1 month')$$);
SELECT test_helpers.error_of($$SELECT interactions_cron.export_interactions(max_runtime => '25 days')$$);
SELECT test_helpers.error_of($$SET interactions_cron.max_runtime = -1$$);

-- Only a superuser sets the budget of every call.
CREATE ROLE regress_catch_up_user;
SET ROLE regress_catch_up_user;
SET interactions_cron.max_runtime = '1h';
RESET ROLE;
DROP ROLE regress_catch_up_user;

RESET interactions_cron.max_workers;
RESET interactions_cron.batch_size;
DROP TRIGGER note_batch ON interactions_cron.export_intents;
DROP FUNCTION test_helpers.note_batch();
DROP TABLE test_helpers.batch_order;
