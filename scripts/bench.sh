#!/usr/bin/env bash
# Benchmark of export_interactions() against baselines run side by side on
# the same rows in the same cluster:
#   (a) COPY (SELECT ... ORDER BY ... LIMIT n) TO 'file', text format, per tenant
#   (b) COPY (SELECT row_to_json(...) ...) TO 'file', per tenant
# plus the backend's peak private memory for batch_size 10,000 vs 1,000,000,
# and the cost of idle tenants in a run over 10,000 active tenants.
# Prints rows/s and ratios; it asserts nothing about time.  Needs root on a
# fresh machine (it installs what is missing); takes a few minutes.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

TENANTS=${BENCH_TENANTS:-100}
ROWS_PER_TENANT=${BENCH_ROWS_PER_TENANT:-10000}
WHALE_ROWS=${BENCH_WHALE_ROWS:-1000000}
IDLE_TENANTS=${BENCH_IDLE_TENANTS:-10000}
REPEAT=${BENCH_REPEAT:-3}

ensure_packages
build_and_install
start_cluster "shared_buffers = '256MB'" "max_wal_size = '4GB'" "checkpoint_timeout = '30min'" \
    "shared_preload_libraries = 'interactions_cron'"
BASELINE_DIR="$CLUSTER_DIR/baseline"
as_pg_user mkdir -p "$BASELINE_DIR"

sql() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

log "loading $TENANTS tenants x $ROWS_PER_TENANT rows (about 300 bytes of JSON each)"
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q <<SQL
INSERT INTO tenants (id, name) SELECT format('tenant_%s', lpad(t::text, 5, '0')), 'Tenant ' || t
FROM generate_series(1, $TENANTS) t;
INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, direction, event_type, score, metadata)
SELECT format('tenant_%s', lpad(t::text, 5, '0')),
       timestamptz '2026-03-29 00:00:00+00' + g * interval '7 seconds',
       'contact_' || (g % 5000), (ARRAY['email', 'sms', 'voice', 'chat'])[1 + g % 4],
       CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
       (ARRAY['sent', 'delivered', 'opened', 'replied'])[1 + g % 4], (g % 1000) / 7.0,
       jsonb_build_object('campaign', 'spring-sale-' || (g % 50), 'template', 'tpl_' || (g % 20),
                          'tags', jsonb_build_array('promo', 'q' || (g % 4)), 'attempt', g % 3,
                          'subject', 'Your order #' || g || ' has shipped')
FROM generate_series(1, $TENANTS) t, generate_series(1, $ROWS_PER_TENANT) g;
VACUUM ANALYZE;
SQL
sample=$(sql -c "SELECT avg(octet_length(row_to_json(h)::text))::int FROM (SELECT * FROM interaction_history LIMIT 1000) h")
echo "average row: $sample bytes of JSON"

reset_export() {
    sql -q -c "TRUNCATE interactions_cron.export_checkpoints"
    rm -rf "$CLUSTER_DIR/exports/exports" "$BASELINE_DIR"/*
}

# time_ms SQL: runs SQL in a fresh session and prints the wall time in ms
# (the connection's few ms are in every measurement alike).
time_ms() {
    local started
    started=$(date +%s%N)
    sql -c "$1" >/dev/null
    echo $((($(date +%s%N) - started) / 1000000))
}

copy_per_tenant() {
    local row_expression=$1 suffix=$2
    cat <<SQL
DO \$\$
DECLARE tenant text;
BEGIN
    FOR tenant IN SELECT id FROM tenants WHERE status = 'active' ORDER BY id LOOP
        EXECUTE format('COPY (SELECT $row_expression FROM (SELECT * FROM public.interaction_history
                        WHERE tenant_id = %L ORDER BY created_at, id LIMIT $ROWS_PER_TENANT) h) TO %L',
                       tenant, '$BASELINE_DIR/' || tenant || '$suffix');
    END LOOP;
END \$\$;
SQL
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

log "export vs COPY baselines, $REPEAT rounds each, interleaved"
ours=(); copy_text=(); copy_json=()
for round in $(seq "$REPEAT"); do
    reset_export
    ours+=("$(time_ms "SELECT interactions_cron.export_interactions(batch_size => $ROWS_PER_TENANT) IS NOT NULL")")
    exported=$(find "$CLUSTER_DIR/exports/exports" -name '*.json' -exec cat {} + | wc -l)
    [ "$exported" -eq $((TENANTS * ROWS_PER_TENANT)) ] || die "export wrote $exported rows"
    reset_export
    copy_text+=("$(time_ms "$(copy_per_tenant 'h.*' .txt)")")
    reset_export
    copy_json+=("$(time_ms "$(copy_per_tenant 'row_to_json(h)' .json)")")
    echo "round $round: export ${ours[-1]} ms, COPY text ${copy_text[-1]} ms, COPY row_to_json ${copy_json[-1]} ms"
done
total_rows=$((TENANTS * ROWS_PER_TENANT))
ours_ms=$(printf '%s\n' "${ours[@]}" | median)
text_ms=$(printf '%s\n' "${copy_text[@]}" | median)
json_ms=$(printf '%s\n' "${copy_json[@]}" | median)
awk -v rows="$total_rows" -v o="$ours_ms" -v t="$text_ms" -v j="$json_ms" 'BEGIN {
    printf "\n%-40s %10s %14s %10s\n", "median of rounds", "ms", "rows/s", "ratio"
    printf "%-40s %10d %14d %10s\n", "export_interactions()", o, rows / (o / 1000), "1.00"
    printf "%-40s %10d %14d %10.2f   (target: export <= 1.30x)\n", "(a) COPY ... TO file, text", t, rows / (t / 1000), o / t
    printf "%-40s %10d %14d %10.2f   (target: export < 1.00x)\n", "(b) COPY row_to_json(...) TO file", j, rows / (j / 1000), o / j
}'

log "sinks: local files vs gzip vs S3 (s3rver on 127.0.0.1), same rows"
if [ ! -x "$REPO_ROOT/test/s3/node_modules/.bin/s3rver" ]; then
    (cd "$REPO_ROOT/test/s3" && npm ci --no-audit --no-fund --loglevel=error)
fi
S3_PORT=$(free_port)
mkdir -p "$CLUSTER_DIR/s3rver"
"$REPO_ROOT/test/s3/node_modules/.bin/s3rver" -d "$CLUSTER_DIR/s3rver" -a 127.0.0.1 -p "$S3_PORT" \
    --configure-bucket bench --silent &
s3rver_pid=$!
trap 'kill $s3rver_pid 2>/dev/null; stop_cluster' EXIT
sleep 2
EXPORT_SQL="SELECT interactions_cron.export_interactions(batch_size => $ROWS_PER_TENANT) IS NOT NULL"
S3_SETTINGS="SET interactions_cron.storage = 's3'; SET interactions_cron.s3_bucket = 'bench';
  SET interactions_cron.s3_endpoint = 'http://127.0.0.1:$S3_PORT'; SET interactions_cron.s3_path_style = on;
  SET interactions_cron.s3_access_key_id = 'S3RVER'; SET interactions_cron.s3_secret_access_key = 'S3RVER';"
reset_export; local_ms=$(time_ms "$EXPORT_SQL")
local_bytes=$(du -sb "$CLUSTER_DIR/exports/exports" | cut -f1)
reset_export; gzip_ms=$(time_ms "SET interactions_cron.compression = 'gzip'; $EXPORT_SQL")
gzip_bytes=$(du -sb "$CLUSTER_DIR/exports/exports" | cut -f1)
reset_export; s3_ms=$(time_ms "$S3_SETTINGS $EXPORT_SQL")
s3_objects=$(find "$CLUSTER_DIR/s3rver" -name '*._S3rver_object' | wc -l)
[ "$s3_objects" -ge "$TENANTS" ] || die "S3 export stored $s3_objects objects"
awk -v rows="$total_rows" -v l="$local_ms" -v g="$gzip_ms" -v s="$s3_ms" -v lb="$local_bytes" -v gb="$gzip_bytes" 'BEGIN {
    printf "\n%-40s %10s %14s %10s %14s\n", "sink", "ms", "rows/s", "ratio", "bytes"
    printf "%-40s %10d %14d %10s %14d\n", "local files", l, rows / (l / 1000), "1.00", lb
    printf "%-40s %10d %14d %10.2f %14d\n", "local files, gzip", g, rows / (g / 1000), g / l, gb
    printf "%-40s %10d %14d %10.2f %14s\n", "S3 (s3rver on loopback)", s, rows / (s / 1000), s / l, "-"
}'
kill "$s3rver_pid" 2>/dev/null || true

log "memory: one tenant, $WHALE_ROWS rows, batch_size 10000 vs $WHALE_ROWS"
sql -q <<SQL
INSERT INTO tenants (id, name) VALUES ('whale', 'Whale');
INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, metadata)
SELECT 'whale', timestamptz '2026-03-20 00:00:00+00' + g * interval '1 second', 'c' || g, 'email',
       jsonb_build_object('subject', 'Message ' || g, 'tags', jsonb_build_array('bulk'))
FROM generate_series(1, $WHALE_ROWS) g;
ANALYZE interaction_history;
SQL

# private_kb_samples BATCH: RssAnon of the backend, sampled every 50 ms
# while it exports the whale with that batch size, one value per line.
private_kb_samples() {
    local batch=$1 pid_file pid client
    reset_export
    pid_file=$(mktemp)
    sql -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(0.3)" \
        -c "SELECT interactions_cron.export_interactions(batch_size => $batch, tenant_id => 'whale') IS NOT NULL" \
        > "$pid_file" &
    client=$!
    sleep 0.2
    pid=$(head -1 "$pid_file")
    sleep 0.1
    while kill -0 "$client" 2>/dev/null; do
        awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true
        sleep 0.05
    done
    wait "$client"
    rm -f "$pid_file"
}
small=$(private_kb_samples 10000 | sort -n | tail -1)
mapfile -t whale < <(private_kb_samples "$WHALE_ROWS")
whale_lines=$(find "$CLUSTER_DIR/exports/exports/whale" -name '*.json' -exec cat {} + | wc -l)
[ "$whale_lines" -eq "$WHALE_ROWS" ] || die "whale export wrote $whale_lines rows"
count=${#whale[@]}
early=${whale[$((count / 4))]}
late=${whale[$((count * 9 / 10))]}
peak=$(printf '%s\n' "${whale[@]}" | sort -n | tail -1)
echo "backend private memory (RssAnon), sampled every 50 ms:"
echo "  batch 10000 (peak): ${small} kB"
echo "  batch $WHALE_ROWS: ${count} samples; at 25% of the run ${early} kB, at 90% ${late} kB, peak ${peak} kB"
awk -v e="$early" -v l="$late" 'BEGIN { printf "  growth from 25%% to 90%% of the rows: %.2fx (flat = 1.00x)\n", l / e }'

log "idle tenants: $IDLE_TENANTS active tenants, $TENANTS of them with new rows"
sql -q <<SQL
DELETE FROM tenants WHERE id = 'whale';
INSERT INTO tenants (id, name)
SELECT format('idle_%s', lpad(t::text, 6, '0')), 'Idle ' || t FROM generate_series(1, $IDLE_TENANTS - $TENANTS) t;
ANALYZE tenants;
SQL
reset_export
sql -c "SELECT interactions_cron.export_interactions(batch_size => $ROWS_PER_TENANT) IS NOT NULL" >/dev/null
idle_runs=()
for round in $(seq "$REPEAT"); do
    idle_runs+=("$(time_ms "SELECT interactions_cron.export_interactions() IS NOT NULL")")
done
idle_ms=$(printf '%s\n' "${idle_runs[@]}" | median)
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) SELECT id, '2026-03-30 12:00:00+00' FROM tenants WHERE id LIKE 'tenant_%'"
busy_ms=$(time_ms "SELECT interactions_cron.export_interactions() IS NOT NULL")
awk -v n="$IDLE_TENANTS" -v idle="$idle_ms" -v busy="$busy_ms" -v t="$TENANTS" 'BEGIN {
    printf "run over %d tenants, none with new rows: %d ms = %.4f ms per idle tenant (target: < 0.1 ms)\n", n, idle, idle / n
    printf "run over %d tenants, %d with one new row each: %d ms\n", n, t, busy
}'
