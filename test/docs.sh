#!/usr/bin/env bash
# The manual against the code (the docs suite): every setting the library
# defines is in doc/configuration.md with its type, default, unit and context
# (test/docs/check_settings.py); every fenced ```sql block of README.md,
# CHANGELOG.md and doc/*.md runs, each in a fresh copy of a database holding
# the reference schema, sample tenants and the extension, and every relative
# link leads to a file and heading that exist (test/docs/run_examples.py).
# Runs on a throwaway cluster of its own, since the examples include ALTER
# SYSTEM and CREATE DATABASE; it preloads pg_cron, whose database
# (cron.database_name) is postgres, for the examples marked `sql pg_cron`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

start_cluster "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'postgres'" "fsync = off"
DB=postgres
as_pg_user mkdir -p "$CLUSTER_DIR/docs"

python3 "$REPO_ROOT/test/docs/check_settings.py" "$REPO_ROOT"

# The template of every example's database: the reference schema, three
# tenants with rows (the names the examples use), an export already run, and
# the role the examples grant to.
sql -q -c "CREATE ROLE exporter LOGIN" -c "CREATE DATABASE docs_template"
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION interactions_cron"
DB=docs_template
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q <<'SQL'
INSERT INTO tenants (id, name) VALUES ('tenant_001', 'Acme Corp'), ('tenant_002', 'Beta Inc'), ('tenant_003', 'Gamma LLC');
INSERT INTO interaction_history (tenant_id, created_at, channel)
SELECT t, now() - interval '1 hour' + g * interval '1 second', 'email'
FROM unnest(ARRAY['tenant_001', 'tenant_002']) t, generate_series(1, 100) g;
INSERT INTO suppressions (tenant_id, contact_id, expires_at) VALUES ('tenant_001', 'c1', now() - interval '1 day');
INSERT INTO interaction_summaries (tenant_id, period_type, period_start) VALUES ('tenant_001', 'daily', current_date - 400);
SQL
sql -q -c "ALTER DATABASE docs_template SET interactions_cron.export_dir = '$CLUSTER_DIR/docs/template'"
expect "the template's first export" \
    "$(sql -c "SELECT result->>'totalExported' FROM (SELECT interactions_cron.export_interactions() AS result) r")" 200

python3 "$REPO_ROOT/test/docs/run_examples.py" "$REPO_ROOT" "$CLUSTER_DIR/docs"
