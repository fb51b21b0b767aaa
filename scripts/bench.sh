#!/usr/bin/env bash
# Benchmark of export_interactions() against peers run side by side on the
# same rows in the same cluster, in interleaved rounds (median reported):
#   export_interactions() with the default settings (interactions_cron.max_workers = 4)
#   export_interactions() with SET interactions_cron.max_workers = 1
#   (a) COPY (SELECT ... ORDER BY ... LIMIT n) TO 'file', text format, per tenant
#   (b) COPY (SELECT row_to_json(...) ...) TO 'file', per tenant
#   a Node.js exporter doing the same job with npm pg (bench/node-peer)
# then the sinks (local, zstd, gzip at its default and at 6, S3 on s3rver)
# with time and compression ratios, the private memory (RssAnon) of
# every export worker and of the calling backend through a 1,000,000-row
# batch, and the cost of idle tenants in a run over 10,000 active tenants.
# Prints times, rows/s and ratios with their targets; it asserts nothing about
# time (it fails only when an export wrote the wrong rows).  Needs root on a
# fresh machine (it installs what is missing); takes a few minutes.
#
# Smaller runs: BENCH_TENANTS, BENCH_ROWS_PER_TENANT, BENCH_WHALE_ROWS,
# BENCH_IDLE_TENANTS, BENCH_BUSY_TENANTS, BENCH_REPEAT, BENCH_CLEANUP_ROWS,
# BENCH_CLEANUP_REPEAT.  BENCH_NODE_CONNECTIONS (default 4, as max_workers)
# sets the Node peer's connections.  BENCH_SKIP_BUILD=1 uses the build
# already installed instead of building and installing this tree.
#
# PG_VERSIONS (default "15 17 18") chooses the PostgreSQL majors: the host's
# runs here, each other one in its Debian chroot (scripts/lib/chroot.sh),
# one full benchmark after the other.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/chroot.sh"

PG_VERSIONS=${PG_VERSIONS:-$SUPPORTED_PG_VERSIONS}
if [ "$(echo $PG_VERSIONS)" != "$(host_pg_version)" ]; then
    for version in $PG_VERSIONS; do
        log "benchmark on PostgreSQL $version"
        (run_on_version "$version" scripts/bench.sh) || die "the benchmark failed on PostgreSQL $version"
    done
    exit 0
fi

TENANTS=${BENCH_TENANTS:-100}
ROWS_PER_TENANT=${BENCH_ROWS_PER_TENANT:-10000}
WHALE_ROWS=${BENCH_WHALE_ROWS:-1000000}
IDLE_TENANTS=${BENCH_IDLE_TENANTS:-10000}
REPEAT=${BENCH_REPEAT:-3}
NODE_CONNECTIONS=${BENCH_NODE_CONNECTIONS:-4}
NODE_PEER="$REPO_ROOT/bench/node-peer"
WORKER_TYPE='interactions_cron export worker'

ensure_packages
if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
    log "using the installed build (BENCH_SKIP_BUILD=1)"
else
    build_and_install
fi
if [ ! -d "$NODE_PEER/node_modules/pg" ]; then
    log "installing the Node peer's dependencies (npm ci)"
    (cd "$NODE_PEER" && npm ci --no-audit --no-fund --loglevel=error)
fi
# shared_buffers holds the benchmark's table (about 330 MB with its indexes),
# as a server sized for its working set would (the usual 25% of RAM is 6 GB
# here), in huge pages, as PostgreSQL's documentation advises for a large
# buffer pool.  Without them every new process (each export worker, and the
# COPY baselines' backends alike) faults the buffer pool in 4 kB at a time,
# and on a virtual machine those faults cost more than the export itself.
# The pages are reserved for the benchmark and given back at its end; where
# they cannot be, the run says so and goes on with normal pages.
HUGE_PAGES_BEFORE=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
HUGE_PAGES_WANTED=640
huge_pages=off
if [ "$(id -u)" -eq 0 ] && echo $((HUGE_PAGES_BEFORE + HUGE_PAGES_WANTED)) > /proc/sys/vm/nr_hugepages 2>/dev/null \
    && [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge "$HUGE_PAGES_WANTED" ]; then
    huge_pages=on
else
    echo "note: no huge pages could be reserved; shared_buffers uses normal pages"
fi
release_huge_pages() { [ "$huge_pages" = on ] && echo "$HUGE_PAGES_BEFORE" > /proc/sys/vm/nr_hugepages; return 0; }
start_cluster "shared_buffers = '1GB'" "huge_pages = $huge_pages" "max_wal_size = '4GB'" "checkpoint_timeout = '30min'" \
    "shared_preload_libraries = 'interactions_cron'"
trap 'stop_cluster; release_huge_pages' EXIT
echo "shared_buffers: $(psql -X -At -c 'SHOW shared_buffers'), huge pages: $huge_pages"
BASELINE_DIR="$CLUSTER_DIR/baseline"
NODE_DIR="$CLUSTER_DIR/node-peer"
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
echo "export_interactions() of $(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'interactions_cron'")"

reset_copy_files() { find "${BASELINE_DIR:?}" -mindepth 1 -delete; }
reset_export() {
    sql -q -c "TRUNCATE interactions_cron.export_checkpoints"
    rm -rf "$CLUSTER_DIR/exports/exports"
    reset_copy_files
}

now_ns() { date +%s%N; }
elapsed_ms() { echo $((($(now_ns) - $1) / 1000000)); }

# time_ms SQL: runs SQL in a fresh session and prints the wall time in ms
# (the connection's few ms are in every measurement alike).
time_ms() {
    local started
    started=$(now_ns)
    sql -c "$1" >/dev/null
    elapsed_ms "$started"
}

# lines_under DIR: the NDJSON lines of every plain .json file under DIR.
lines_under() {
    if [ -d "$1" ]; then find "$1" -name '*.json' -exec cat {} + | wc -l; else echo 0; fi
}

total_rows=$((TENANTS * ROWS_PER_TENANT))

# run_export SETTINGS: after the SET statements in SETTINGS, exports every
# tenant from scratch in a fresh session; checks that every row was written
# once and prints "<ms> <workers>" (the result's "workers").
run_export() {
    local settings=$1 started ms out ok exported workers lines
    reset_export
    started=$(now_ns)
    out=$(sql -q -c "$settings SELECT concat_ws(' ', r->>'ok', r->>'totalExported', r->>'workers')
                     FROM interactions_cron.export_interactions(batch_size => $ROWS_PER_TENANT) r")
    ms=$(elapsed_ms "$started")
    read -r ok exported workers <<<"$out"
    [ "$ok" = true ] && [ "$exported" -eq "$total_rows" ] || die "export returned ok=$ok totalExported=$exported"
    lines=$(lines_under "$CLUSTER_DIR/exports/exports")
    [ "$lines" -eq "$total_rows" ] || die "export wrote $lines rows, expected $total_rows"
    echo "$ms $workers"
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

# run_node_peer: the Node.js peer exports every tenant from scratch (its own
# checkpoint table emptied, its directory removed); checks the rows written
# and prints "<ms> <connections>".  The time includes starting node.
run_node_peer() {
    local started ms out lines
    sql -q -c "DO \$\$ BEGIN IF to_regclass('node_peer.checkpoints') IS NOT NULL THEN
                   TRUNCATE node_peer.checkpoints; END IF; END \$\$"
    rm -rf "$NODE_DIR"
    started=$(now_ns)
    out=$(node "$NODE_PEER/export.mjs" --dir "$NODE_DIR" --batch-size "$ROWS_PER_TENANT" \
        --connections "$NODE_CONNECTIONS") || die "node peer failed: $out"
    ms=$(elapsed_ms "$started")
    lines=$(lines_under "$NODE_DIR/exports")
    [ "$lines" -eq "$total_rows" ] || die "node peer wrote $lines rows, expected $total_rows: $out"
    echo "$ms $(node -e 'console.log(JSON.parse(process.argv[1]).connections)' "$out")"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# export_vs_copy CONFIGURATION: the export (4 workers and 1) against the
# COPY baselines and the Node peer, REPEAT rounds interleaved, medians and
# ratios printed under the name of the server's configuration.
export_vs_copy() {
    local configuration=$1 round out ms line
    local ours=() ours1=() copy_text=() copy_json=() peer=()
    log "export vs COPY baselines vs Node peer, $REPEAT rounds each, interleaved ($configuration)"
    for round in $(seq "$REPEAT"); do
        out=$(run_export ""); read -r ms workers <<<"$out"
        ours+=("$ms")
        line="round $round: export $ms ms (workers: $workers)"
        out=$(run_export "SET interactions_cron.max_workers = 1;"); read -r ms workers1 <<<"$out"
        ours1+=("$ms")
        line+=", max_workers = 1: $ms ms (workers: $workers1)"
        reset_export
        copy_text+=("$(time_ms "$(copy_per_tenant 'h.*' .txt)")")
        reset_export
        copy_json+=("$(time_ms "$(copy_per_tenant 'row_to_json(h)' .json)")")
        reset_export
        out=$(run_node_peer); read -r ms connections <<<"$out"
        peer+=("$ms")
        echo "$line, COPY text ${copy_text[-1]} ms, COPY row_to_json ${copy_json[-1]} ms, node peer $ms ms"
    done
    awk -v rows="$total_rows" -v rounds="$REPEAT" -v conf="$configuration" \
        -v o="$(printf '%s\n' "${ours[@]}" | median)" -v o1="$(printf '%s\n' "${ours1[@]}" | median)" \
        -v t="$(printf '%s\n' "${copy_text[@]}" | median)" -v j="$(printf '%s\n' "${copy_json[@]}" | median)" \
        -v p="$(printf '%s\n' "${peer[@]}" | median)" -v w="$workers" -v w1="${workers1:-}" -v c="$connections" 'BEGIN {
        if (o < 1) o = 1; if (t < 1) t = 1; if (j < 1) j = 1; if (p < 1) p = 1
        printf "\n%s\n%d rows; median of %d rounds           %10s %14s %8s\n", conf, rows, rounds, "ms", "rows/s", "workers"
        printf "%-40s %10d %14d %8d\n", "export_interactions(), default", o, rows / (o / 1000), w
        printf "%-40s %10d %14d %8d\n", "export_interactions(), max_workers = 1", o1, rows / (o1 / 1000), w1
        printf "%-40s %10d %14d %8s\n", "(a) COPY ... TO file, text, per tenant", t, rows / (t / 1000), "-"
        printf "%-40s %10d %14d %8s\n", "(b) COPY row_to_json(...) TO file", j, rows / (j / 1000), "-"
        printf "%-40s %10d %14d %8d\n", "Node.js peer (npm pg)", p, rows / (p / 1000), c
        printf "\n%-40s %10s   %-36s %s\n", "ratio of times", "ratio", "target", "met"
        printf "%-40s %10.2f   %-36s %s\n", sprintf("export (workers: %d) / (a) COPY text", w), o / t, "<= 0.60", (o / t <= 0.6 ? "yes" : "no")
        printf "%-40s %10.2f   %-36s %s\n", sprintf("export (workers: %d) / (a) COPY text", w1), o1 / t, "<= 0.90", (o1 / t <= 0.9 ? "yes" : "no")
        printf "%-40s %10.2f   %-36s %s\n", "export / (b) COPY row_to_json", o / j, "-", "-"
        printf "%-40s %10.2f   %-36s %s\n", "Node peer / export", p / o, ">= 4.50 (export at least 4.5x faster)", (p / o >= 4.5 ? "yes" : "no")
    }'
}

export_vs_copy "shared_buffers = 1GB in huge pages"

log "sinks: local files vs zstd vs gzip vs S3 (s3rver on 127.0.0.1), same rows"
if [ ! -x "$REPO_ROOT/test/s3/node_modules/.bin/s3rver" ]; then
    (cd "$REPO_ROOT/test/s3" && npm ci --no-audit --no-fund --loglevel=error)
fi
S3_PORT=$(free_port)
mkdir -p "$CLUSTER_DIR/s3rver"
"$REPO_ROOT/test/s3/node_modules/.bin/s3rver" -d "$CLUSTER_DIR/s3rver" -a 127.0.0.1 -p "$S3_PORT" \
    $(for round in $(seq "$REPEAT"); do echo --configure-bucket "bench$round"; done) --silent &
s3rver_pid=$!
trap 'kill "$s3rver_pid" 2>/dev/null || true; stop_cluster; release_huge_pages' EXIT
sleep 2
EXPORT_SQL="SELECT r->>'totalExported' FROM interactions_cron.export_interactions(batch_size => $ROWS_PER_TENANT) r"
# Credentials cannot be SET in a session; a private credentials file can be named there.
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' |
    as_pg_user tee "$CLUSTER_DIR/aws-credentials" >/dev/null
as_pg_user chmod 0600 "$CLUSTER_DIR/aws-credentials"
# s3_settings ROUND: the settings of an export to that round's bucket (a
# placed object is never replaced, so each round has an empty bucket).
s3_settings() {
    echo "SET interactions_cron.storage = 's3'; SET interactions_cron.s3_bucket = 'bench$1';
  SET interactions_cron.s3_endpoint = 'http://127.0.0.1:$S3_PORT'; SET interactions_cron.s3_path_style = on;
  SET interactions_cron.s3_credentials_file = '$CLUSTER_DIR/aws-credentials';"
}
# time_sink NAME SETTINGS: exports every tenant from scratch after the SET
# statements in SETTINGS; appends "<ms> <bytes>" of that run to NAME's list.
declare -A sink_runs
time_sink() {
    local started ms exported bytes=-
    reset_export
    started=$(now_ns)
    exported=$(sql -q -c "$2 $EXPORT_SQL")
    ms=$(elapsed_ms "$started")
    [ "$exported" = "$total_rows" ] || die "the $1 export exported $exported rows of $total_rows"
    [ -d "$CLUSTER_DIR/exports/exports" ] && bytes=$(du -sb "$CLUSTER_DIR/exports/exports" | cut -f1)
    sink_runs[$1]+="$ms $bytes"$'\n'
}
# sink_median NAME: that sink's median time, and the bytes of its last run.
sink_median() {
    printf '%s' "${sink_runs[$1]}" | awk 'NF {print $1}' | median | tr '\n' ' '
    printf '%s' "${sink_runs[$1]}" | awk 'NF {b = $2} END {print b}'
}
# Each codec at its default level (interactions_cron.compression_level = 0),
# and gzip at level 6 (zlib's own default), for comparison; REPEAT rounds, interleaved.
for round in $(seq "$REPEAT"); do
    time_sink local ""
    time_sink zstd "SET interactions_cron.compression = 'zstd';"
    time_sink gzip "SET interactions_cron.compression = 'gzip';"
    time_sink gzip6 "SET interactions_cron.compression = 'gzip'; SET interactions_cron.compression_level = 6;"
    time_sink s3 "$(s3_settings "$round")"
done
read -r local_ms local_bytes <<<"$(sink_median local)"
read -r zstd_ms zstd_bytes <<<"$(sink_median zstd)"
read -r gzip_ms gzip_bytes <<<"$(sink_median gzip)"
read -r gzip6_ms gzip6_bytes <<<"$(sink_median gzip6)"
read -r s3_ms _ <<<"$(sink_median s3)"
s3_objects=$(find "$CLUSTER_DIR/s3rver" -name '*._S3rver_object' | wc -l)
[ "$s3_objects" -ge "$TENANTS" ] || die "S3 export stored $s3_objects objects"
awk -v rows="$total_rows" -v l="$local_ms" -v z="$zstd_ms" -v g="$gzip_ms" -v g6="$gzip6_ms" -v s="$s3_ms" \
    -v lb="$local_bytes" -v zb="$zstd_bytes" -v gb="$gzip_bytes" -v g6b="$gzip6_bytes" 'BEGIN {
    if (l < 1) l = 1; if (z < 1) z = 1; if (g < 1) g = 1; if (g6 < 1) g6 = 1; if (s < 1) s = 1
    printf "\nmedian of '"$REPEAT"' rounds\n%-34s %8s %12s %10s %13s %12s   %-28s %s\n", "sink", "ms", "rows/s", "time ratio", "bytes", "compression", "target", "met"
    printf "%-34s %8d %12d %10s %13d %12s\n", "local files", l, rows / (l / 1000), "1.00", lb, "1.0x"
    printf "%-34s %8d %12d %10.2f %13d %11.1fx   %-28s %s\n", "local files, zstd (default level)", z, rows / (z / 1000), z / l, zb, lb / zb,
        "time <= 1.25, size <= gzip 6", (z / l <= 1.25 && zb <= g6b ? "yes" : "no")
    printf "%-34s %8d %12d %10.2f %13d %11.1fx   %-28s %s\n", "local files, gzip (default level)", g, rows / (g / 1000), g / l, gb, lb / gb,
        "time <= 1.6", (g / l <= 1.6 ? "yes" : "no")
    printf "%-34s %8d %12d %10.2f %13d %11.1fx\n", "local files, gzip level 6", g6, rows / (g6 / 1000), g6 / l, g6b, lb / g6b
    printf "%-34s %8d %12d %10.2f %13s\n", "S3 (s3rver on loopback)", s, rows / (s / 1000), s / l, "-"
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

# rss_anon KIND PID: prints "KIND PID <RssAnon in kB>" of a live process
# (nothing once it is gone), without starting a process of its own.
rss_anon() {
    local key value _
    { while read -r key value _; do
          [ "$key" = RssAnon: ] && { echo "$1 $2 $value"; break; }
      done < "/proc/$2/status"; } 2>/dev/null || true
}

# memory_samples SQL: runs SQL (an export) in one session while this script
# samples every 50 ms the private memory (RssAnon, kB) of that session's
# backend and of every process that another session lists in
# pg_stat_activity with backend_type 'interactions_cron export worker'.
# Prints "backend|worker <pid> <kB>" per sample, in time order, then
# "ms <the SQL's time>".  The lake and checkpoints are emptied first, unless
# KEEP_LAKE=1.
memory_samples() {
    local export_sql=$1 pid_file client backend_pid line pid workers monitor_in
    local clock="SELECT '%s', (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    [ "${KEEP_LAKE:-0}" = 1 ] || reset_export
    pid_file=$(mktemp)
    # shellcheck disable=SC2059
    sql -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(0.5)" -c "$(printf "$clock" started)" -c "$export_sql" \
        -c "$(printf "$clock" ended)" > "$pid_file" &
    client=$!
    coproc MONITOR { psql -X -At -q 2>/dev/null; }
    monitor_in=${MONITOR[1]}
    # the client's first line, once it has connected; sampling starts as its
    # 0.5 s sleep ends, by when the monitor session has connected too
    for _ in $(seq 500); do
        backend_pid=$(head -1 "$pid_file")
        [ -n "$backend_pid" ] || ! kill -0 "$client" 2>/dev/null && break
        sleep 0.01
    done
    sleep 0.5
    while kill -0 "$client" 2>/dev/null; do
        workers=()
        echo "SELECT pid FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'; SELECT 'end';" >&"$monitor_in"
        while IFS= read -r -t 10 line <&"${MONITOR[0]}" && [ "$line" != end ]; do
            workers+=("$line")
        done
        rss_anon backend "$backend_pid"
        for pid in "${workers[@]}"; do
            rss_anon worker "$pid"
        done
        sleep 0.05
    done
    wait "$client" || die "the export failed: $export_sql"
    exec {monitor_in}>&-
    wait "$MONITOR_PID" 2>/dev/null || true
    awk -F'|' '$1 == "started" {s = $2} $1 == "ended" {print "ms", $2 - s}' "$pid_file"
    rm -f "$pid_file"
}

# series_at KIND PID FRACTION < samples: the sample of that process at that
# fraction of its samples; "peak" for FRACTION gives its highest.
series_at() {
    awk -v k="$1" -v p="$2" -v f="$3" '$1 == k && $2 == p {v[++n] = $3; if ($3 > m) m = $3}
        END { if (n == 0) print 0; else if (f == "peak") print m; else print v[1 + int((n - 1) * f)] }'
}

whale_export() {
    echo "SELECT interactions_cron.export_interactions(batch_size => $1, tenant_id => 'whale') IS NOT NULL"
}
small_samples=$(memory_samples "$(whale_export 10000)")
whale_samples=$(memory_samples "$(whale_export "$WHALE_ROWS")")
whale_lines=$(lines_under "$CLUSTER_DIR/exports/exports/whale")
[ "$whale_lines" -eq "$WHALE_ROWS" ] || die "whale export wrote $whale_lines rows"
echo "private memory (RssAnon), sampled every 50 ms:"
small_worker=$(awk '$1 == "worker" && $3 > m {m = $3} END {print m + 0}' <<<"$small_samples")
small_backend=$(awk '$1 == "backend" && $3 > m {m = $3} END {print m + 0}' <<<"$small_samples")
echo "  batch 10000: peak of the export workers ${small_worker} kB, of the calling backend ${small_backend} kB"
report_series() {
    local kind=$1 pid=$2 count early late peak
    count=$(awk -v k="$kind" -v p="$pid" '$1 == k && $2 == p' <<<"$whale_samples" | wc -l)
    early=$(series_at "$kind" "$pid" 0.25 <<<"$whale_samples")
    late=$(series_at "$kind" "$pid" 0.90 <<<"$whale_samples")
    peak=$(series_at "$kind" "$pid" peak <<<"$whale_samples")
    awk -v what="$3" -v n="$count" -v e="$early" -v l="$late" -v p="$peak" 'BEGIN {
        printf "  batch '"$WHALE_ROWS"', %s: %d samples; at 25%% of its run %d kB, at 90%% %d kB, peak %d kB", what, n, e, l, p
        if (e > 0) printf "; growth 25%%->90%%: %.2fx (flat = 1.00x)", l / e
        printf "\n" }'
}
mapfile -t worker_pids < <(awk '$1 == "worker" {n[$2]++} END {for (p in n) print n[p], p}' <<<"$whale_samples" \
    | sort -rn | awk '{print $2}')
if [ ${#worker_pids[@]} -eq 0 ]; then
    echo "  batch $WHALE_ROWS: no '$WORKER_TYPE' process seen (a build that exports in the backend)"
fi
for pid in "${worker_pids[@]}"; do
    report_series worker "$pid" "export worker $pid"
done
report_series backend "$(awk '$1 == "backend" {print $2; exit}' <<<"$whale_samples")" "calling backend"

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

log "PostgreSQL's default settings: shared_buffers = 128MB, no huge pages, nothing preloaded"
# As a new user's server runs: the settings above are overridden by their
# defaults (later lines win), huge pages are given back first.
as_pg_user "$(pg_bin)/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
release_huge_pages
printf '%s\n' "shared_buffers = '128MB'" "huge_pages = off" "max_wal_size = '1GB'" "checkpoint_timeout = '5min'" \
    "shared_preload_libraries = ''" | as_pg_user tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
as_pg_user "$(pg_bin)/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null \
    || die "could not restart PostgreSQL with its default settings"
echo "shared_buffers: $(sql -c 'SHOW shared_buffers'), huge pages: $(sql -c 'SHOW huge_pages')"
sql -q <<SQL
DELETE FROM tenants WHERE id LIKE 'idle_%';
DELETE FROM interaction_history WHERE tenant_id LIKE 'tenant_%' AND created_at = '2026-03-30 12:00:00+00';
VACUUM ANALYZE tenants, interaction_history;
SQL
export_vs_copy "PostgreSQL's default settings"

BUSY_TENANTS=${BENCH_BUSY_TENANTS:-50000}
log "many busy tenants: $BUSY_TENANTS active tenants with 2 new rows each, PostgreSQL's default settings"
sql -q <<SQL
UPDATE tenants SET status = 'inactive';
INSERT INTO tenants (id, name)
SELECT format('busy_%s', lpad(t::text, 6, '0')), 'Busy ' || t FROM generate_series(1, $BUSY_TENANTS) t;
INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, direction, event_type, metadata)
SELECT format('busy_%s', lpad(t::text, 6, '0')), timestamptz '2026-03-31 08:00:00+00' + g * interval '1 minute',
       'contact_' || t, 'sms', 'outbound', 'sent', jsonb_build_object('campaign', 'welcome')
FROM generate_series(1, $BUSY_TENANTS) t, generate_series(1, 2) g;
VACUUM ANALYZE tenants, interaction_history;
SQL
# layout_alone_ms: the inodes a busy tenant's first export creates, made
# alone by one process on the same file system: the tenant's spool directory,
# the five directories of its Hive path and one file (empty, not synced).
# The COPY loop creates one file a tenant; this prints what the layout costs
# before a row is read.
layout_alone_ms() {
    as_pg_user perl -MTime::HiRes=time -e '
        my ($root, $tenants) = @ARGV;
        mkdir($root) or $!{EEXIST} or die "mkdir $root: $!\n";
        my $started = time;
        for my $i (1 .. $tenants) {
            my $tenant = sprintf("busy_%06d", $i);
            my $day = "exports/$tenant/interaction_history/year=2026/month=03/day=31";
            for my $dir (".spool", ".spool/db", ".spool/db/$tenant", "exports", "exports/$tenant",
                         "exports/$tenant/interaction_history", $day =~ s{/month=.*}{}r,
                         $day =~ s{/day=.*}{}r, $day) {
                mkdir("$root/$dir") or $!{EEXIST} or die "mkdir $root/$dir: $!\n";
            }
            open(my $file, ">", "$root/$day/batch.json") or die "open: $!\n";
            close($file);
        }
        printf "%d\n", (time - $started) * 1000;' "$BASELINE_DIR/layout" "$BUSY_TENANTS"
}

# busy_round KIND ROUND LAKE: the COPY loop into new files (named with KIND
# and ROUND), then the export of every busy tenant's waiting rows (2 each)
# into LAKE with the private memory of its processes sampled; checks the
# rows written and prints "<export ms> <COPY ms> <caller's peak kB>
# <a worker's peak kB>".  Each round's COPY files are new ones beside the
# earlier rounds', which stay: ext4 without a journal passes over the inodes
# freed in the last minute (five while their inode table block is unwritten:
# recently_deleted() in fs/ext4/ialloc.c) when it allocates one, and
# creating 30,000 files right after deleting as many took 13.3 s against
# 3.1-4.2 s otherwise on this machine, which would slow the loop, not the
# export.  So nothing is deleted between rounds either.
busy_round() {
    local kind=$1 round=$2 lake=$3 suffix=".$1.$2.txt" copy_ms copy_files samples export_ms lines lines_before
    copy_ms=$(time_ms "$(copy_per_tenant 'h.*' "$suffix")")
    copy_files=$(find "$BASELINE_DIR" -maxdepth 1 -name "*$suffix" | wc -l)
    [ "$copy_files" -eq "$BUSY_TENANTS" ] || die "the COPY loop wrote $copy_files files"
    lines_before=$(lines_under "$lake/exports")
    samples=$(KEEP_LAKE=1 memory_samples "SET interactions_cron.export_dir = '$lake';
        SELECT r->>'totalExported' FROM interactions_cron.export_interactions() r")
    export_ms=$(awk '$1 == "ms" {print $2}' <<<"$samples")
    lines=$(( $(lines_under "$lake/exports") - lines_before ))
    [ "$lines" -eq $((BUSY_TENANTS * 2)) ] || die "the busy tenants' export wrote $lines rows of $((BUSY_TENANTS * 2))"
    echo "$export_ms $copy_ms" \
        "$(awk '$1 == "backend" && $3 > m {m = $3} END {print m + 0}' <<<"$samples")" \
        "$(awk '$1 == "worker" && $3 > m {m = $3} END {print m + 0}' <<<"$samples")"
}

# busy_rounds LABEL KIND: BUSY_REPEAT rounds of busy_round, each a COPY loop
# and then the export beside it; for KIND first each round's export is a
# first one (the checkpoints emptied, a new lake), for KIND next each round
# first adds 2 rows to every busy tenant (the hourly case).  Prints every
# round, the median times and the median of the rounds' ratios (each
# export against the loop just before it), and the peaks over all rounds.
busy_rounds() {
    local label=$1 kind=$2 round lake rounds=()
    for round in $(seq "$BUSY_REPEAT"); do
        if [ "$kind" = first ]; then
            sql -q -c "TRUNCATE interactions_cron.export_checkpoints"
            lake="$CLUSTER_DIR/busy-first-$round"
            as_pg_user mkdir "$lake"
        else
            sql -q -c "INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, direction, event_type)
                       SELECT id, timestamptz '2026-03-31 09:00:00+00' + ($round * 2 + g) * interval '1 minute',
                              'contact_1', 'sms', 'outbound', 'sent'
                       FROM tenants, generate_series(1, 2) g WHERE id LIKE 'busy_%'" \
                  -c "VACUUM ANALYZE interaction_history"
            lake=$BUSY_LAKE
        fi
        rounds+=("$(busy_round "$kind" "$round" "$lake")")
    done
    BUSY_LAKE=$lake
    BUSY_COPY_MS=$(printf '%s\n' "${rounds[@]}" | awk '{print $2}' | median)
    printf '%s\n' "${rounds[@]}" | awk -v label="$label" -v n="$BUSY_TENANTS" '
        { e[NR] = $1; c[NR] = ($2 < 1 ? 1 : $2); r[NR] = e[NR] / c[NR]
          if ($3 > cp) cp = $3; if ($4 > wp) wp = $4 }
        function median(a, count,   i, j, t, s) {
            for (i = 1; i <= count; i++) s[i] = a[i]
            for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
            return s[int((count + 1) / 2)]
        }
        END {
            printf "%s; median of %d rounds\n%-52s %10s %14s\n", label, NR, "", "ms", "ms per tenant"
            printf "%-52s %10d %14.3f\n", "export_interactions()", median(e, NR), median(e, NR) / n
            printf "%-52s %10d %14.3f\n", "COPY ... TO a file per tenant, one backend", median(c, NR), median(c, NR) / n
            for (i = 1; i <= NR; i++)
                printf "  round %d: export %d ms, COPY loop %d ms, %.2f\n", i, e[i], c[i], r[i]
            printf "export / COPY loop, median of the rounds: %.2f (target: <= 4.00, met: %s)\n", median(r, NR), (median(r, NR) <= 4 ? "yes" : "no")
            printf "peak private memory (RssAnon): calling backend %d kB, each export worker at most %d kB\n\n", cp, wp
        }'
}
BUSY_REPEAT=${BENCH_BUSY_REPEAT:-3}
busy_rounds "first export of each busy tenant (its directories and checkpoint made)" first
# layout_alone_ms: the same first export's inodes, made alone by one process
layout_ms=$(layout_alone_ms)
awk -v n="$BUSY_TENANTS" -v l="$layout_ms" -v c="$BUSY_COPY_MS" 'BEGIN {
    printf "%-52s %10d %14.3f\n", "its 6 directories and a file, made alone", l, l / n
    printf "layout alone / the rounds'"'"' median COPY loop: %.2f\n\n", l / c
}'
# The same first export with sync_method = syncfs (one syncfs() of the file
# system a group, where the default, auto, fsyncs each file and directory of a
# lake on the data directory's file system, as here), into a lake of its own
# beside the others: nothing is deleted before it (see busy_round).  The next
# call's rounds export into it.
sql -q -c "TRUNCATE interactions_cron.export_checkpoints"
BUSY_LAKE="$CLUSTER_DIR/busy-syncfs"
as_pg_user mkdir "$BUSY_LAKE"
syncfs_ms=$(time_ms "SET interactions_cron.sync_method = syncfs;
    SET interactions_cron.export_dir = '$BUSY_LAKE';
    SELECT interactions_cron.export_interactions()")
[ "$(lines_under "$BUSY_LAKE/exports")" -eq $((BUSY_TENANTS * 2)) ] \
    || die "the busy tenants' export with sync_method = syncfs wrote the wrong rows"
awk -v n="$BUSY_TENANTS" -v f="$syncfs_ms" -v c="$BUSY_COPY_MS" 'BEGIN {
    printf "%-52s %10d %14.3f\n", "the same with sync_method = syncfs, once", f, f / n
    printf "with syncfs / the rounds'"'"' median COPY loop: %.2f\n\n", f / c
}'
busy_rounds "the next call, 2 more rows each (the hourly case)" next

source "$REPO_ROOT/bench/cleanup_vs_delete.sh"
