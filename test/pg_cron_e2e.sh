#!/usr/bin/env bash
# pg_cron end to end: the test cluster preloads pg_cron (cron.database_name =
# postgres); interactions_cron.schedule() sets the export to run every
# minute, and the test waits until pg_cron has run it by itself: rows
# exported, files written, the run recorded in interactions_cron.job_runs.
# Then unschedule() removes the jobs.  Without pg_cron, schedule() fails with
# a hint.  Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DB=postgres
EXPORT_DIR="$CLUSTER_DIR/cron_exports"

# Without pg_cron in the database, schedule() explains what to do.
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS interactions_cron_no_cron" -c "CREATE DATABASE interactions_cron_no_cron"
error=$(psql -X -At -d interactions_cron_no_cron -c "CREATE EXTENSION interactions_cron" \
        -c "SELECT interactions_cron.schedule()" 2>&1 || true)
echo "$error" | grep -q 'pg_cron is not installed in database "interactions_cron_no_cron"' \
    || die "schedule() without pg_cron said: $error"
echo "$error" | grep -q 'HINT:' || die "schedule() without pg_cron gave no hint"
echo "ok: schedule() without pg_cron fails with a hint"

sql -q -c "ALTER DATABASE $DB SET interactions_cron.export_dir = '$EXPORT_DIR'"
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" \
    -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q <<'SQL'
INSERT INTO tenants (id, name) VALUES ('cron_a', 'Cron A'), ('cron_b', 'Cron B');
INSERT INTO interaction_history (tenant_id, created_at, channel)
SELECT t, now() - interval '10 minutes' + g * interval '1 second', 'email'
FROM unnest(ARRAY['cron_a', 'cron_b']) t, generate_series(1, 250) g;
SQL

sql -c "SELECT jobname, schedule, command FROM interactions_cron.schedule('* * * * *', '0 3 * * *')"
expect "both jobs are scheduled" \
    "$(sql -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'interactions_cron.%'")" 2
sql -q -c "SELECT interactions_cron.schedule('* * * * *', '0 4 * * *')" >/dev/null
expect "scheduling again updates the jobs in place" \
    "$(sql -c "SELECT count(*) || ' ' || max(schedule) FILTER (WHERE jobname = 'interactions_cron.cleanup') FROM cron.job WHERE jobname LIKE 'interactions_cron.%'")" \
    "2 0 4 * * *"

log "waiting for pg_cron to run the export by itself (up to 150 s)"
for _ in $(seq 150); do
    runs=$(sql -c "SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'export' AND ok AND (result->>'totalExported')::int > 0")
    [ "$runs" -gt 0 ] && break
    sleep 1
done
expect "pg_cron ran the export and it was recorded" "$runs" 1
expect "pg_cron's own record says it succeeded" \
    "$(sql -c "SELECT status FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'interactions_cron.export' ORDER BY d.runid LIMIT 1")" \
    succeeded
expect "the recorded result counts every row" \
    "$(sql -c "SELECT result->>'totalExported' FROM interactions_cron.job_runs WHERE job = 'export' AND ok ORDER BY id LIMIT 1")" 500
expect "the files hold every row" "$(cat "$EXPORT_DIR"/exports/*/interaction_history/*/*/*/*.json | wc -l)" 500

expect "unschedule() removes both jobs" "$(sql -c "SELECT interactions_cron.unschedule()")" 2
expect "no job is left" "$(sql -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'interactions_cron.%'")" 0
