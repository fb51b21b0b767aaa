#!/usr/bin/env bash
# Demo: builds and installs interactions_cron, starts a throwaway cluster,
# loads the reference schema with a few tenants of sample data, runs the
# export, prints its JSON and the files it wrote, and reads them back with
# DuckDB.  On a fresh Debian bookworm machine, as root, it installs what is
# missing first.  KEEP_CLUSTER=1 keeps the cluster directory for a look.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

ensure_packages
build_and_install
start_cluster
ensure_duckdb

log "loading the reference schema and sample data"
psql -X -q -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/reference/schema.sql" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO tenants (id, name, status) VALUES
    ('tenant_001', 'Acme Corp', 'active'),
    ('tenant_002', 'Beta Inc', 'active'),
    ('tenant_003', 'Gamma LLC', 'active'),
    ('tenant_004', 'Dormant Ltd', 'suspended');
INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, direction, event_type, score, metadata)
SELECT t.id,
       now() - interval '36 hours' + g * (interval '35 hours' / t.row_count),
       'contact_' || (g % 97),
       (ARRAY['email', 'sms', 'voice', 'chat'])[1 + g % 4],
       CASE WHEN g % 3 = 0 THEN 'inbound' ELSE 'outbound' END,
       (ARRAY['sent', 'delivered', 'opened', 'replied'])[1 + g % 4],
       round((g % 100) / 10.0, 1),
       jsonb_build_object('campaign', 'spring-' || (g % 5), 'tags', jsonb_build_array('demo', t.id))
FROM (VALUES ('tenant_001', 5200), ('tenant_002', 3300), ('tenant_004', 100)) t(id, row_count),
     generate_series(1, t.row_count) g;
SQL
psql -X -c "SELECT t.id AS tenant, t.status, count(h.id) AS rows FROM tenants t LEFT JOIN interaction_history h ON h.tenant_id = t.id GROUP BY 1, 2 ORDER BY 1"

log "SELECT interactions_cron.export_interactions();"
psql -X -At -c "SELECT jsonb_pretty(interactions_cron.export_interactions())"

log "files written under $CLUSTER_DIR/exports"
(cd "$CLUSTER_DIR/exports" && find exports -type f | sort | while read -r f; do
    printf '%6d lines  %s\n' "$(wc -l < "$f")" "$f"
done)
first_file=$(cd "$CLUSTER_DIR/exports" && find exports -type f -name '*.json' | sort | head -1)
log "first line of $first_file"
head -1 "$CLUSTER_DIR/exports/$first_file"

log "a second run finds nothing new"
psql -X -At -c "SELECT interactions_cron.export_interactions()->'totalExported' AS total_exported"

log "SELECT interactions_cron.cleanup();"
psql -X -q -c "INSERT INTO suppressions (tenant_id, contact_id, expires_at) VALUES
    ('tenant_001', 'c1', now() - interval '1 day'), ('tenant_001', 'c2', NULL)" \
    -c "INSERT INTO interaction_summaries (tenant_id, period_type, period_start)
    SELECT 'tenant_001', 'daily', current_date - d FROM generate_series(360, 370) d"
psql -X -At -c "SELECT jsonb_pretty(interactions_cron.cleanup())"

log "the run history and the export status"
psql -X -c "SELECT job, ok, result->'totalExported' AS exported, result->'cleaned' AS cleaned FROM interactions_cron.job_runs ORDER BY id"
psql -X -c "SELECT tenant_id, status, last_id, rows_exported, rows_waiting, last_success_at IS NOT NULL AS exported FROM interactions_cron.export_status"

log "reading the files back with DuckDB (hive_partitioning)"
node --input-type=module -e "
import { DuckDBInstance } from '$REPO_ROOT/test/duckdb/node_modules/@duckdb/node-api/lib/index.js';
const connection = await (await DuckDBInstance.create(':memory:')).connect();
const reader = await connection.runAndReadAll(\`
  SELECT tenant_id, year, month, day, count(*) AS rows, count(DISTINCT id) AS distinct_ids
  FROM read_json('$CLUSTER_DIR/exports/exports/*/interaction_history/*/*/*/*.json',
                 format = 'newline_delimited', hive_partitioning = true)
  GROUP BY ALL ORDER BY ALL\`);
console.table(reader.getRowObjectsJson());
"
