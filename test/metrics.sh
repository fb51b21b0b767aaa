#!/usr/bin/env bash
# The metrics suite (issue 23), with real curl, promtool and Prometheus on
# 127.0.0.1: /metrics's secrets (METRICS_SECRET, else CRON_SECRET), both
# formats linted, tenant ids of any bytes as label values (quotes,
# backslashes, line ends, and bytes that are not UTF-8 in a SQL_ASCII
# database), values against the database, no job run by a scrape,
# interactions_cron_up 0 within METRICS_TIMEOUT_MS when the database is
# down, never answers, is locked or has 1.1's objects, each run's line in the
# server log, the alert rules' own tests (promtool test rules), and a real
# Prometheus that scrapes the shim during exports, evaluates the alert rules
# and answers its query API with the series.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

DB=interactions_cron_metrics
SECRET='cron-Secret-for-metrics-tests'
METRICS_SECRET_VALUE='metrics-Only-secret'
RULES_DIR="$REPO_ROOT/contrib/prometheus"
# A tenant id a label value must carry intact: quote, backslash, line feed,
# carriage return, tab, and characters beyond ASCII.
ODD_ID=$'odd "id" \\ with\nline\r\tand €✓'

# metrics PORT [curl args]: the /metrics page.
metrics() {
    local port=$1
    shift
    curl -sS --max-time 10 "$@" "http://127.0.0.1:$port/metrics"
}
# sample PAGE NAME: the value of the sample line starting with NAME (name and
# labels, as written).
sample() { awk -v name="$2 " 'index($0, name) == 1 { print $NF; exit }' <<<"$1"; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" \
    -c "ALTER DATABASE $DB SET interactions_cron.export_dir = '$CLUSTER_DIR/metrics_exports'"
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q -v odd="$ODD_ID" <<'EOF'
INSERT INTO tenants (id, name) VALUES ('tenant_a', 'A'), ('tenant_b', 'B'), (:'odd', 'Odd');
INSERT INTO interaction_history (tenant_id, created_at)
SELECT t, now() - interval '2 hours' + g * interval '1 second'
FROM unnest(ARRAY['tenant_a', 'tenant_b', :'odd']) t, generate_series(1, 50) g;
EOF
URL="host=$PGHOST port=$PGPORT dbname=$DB user=postgres"

PORT_CRON=$(free_port); PORT_SPLIT=$(free_port); PORT_DEV=$(free_port)
start_shim cron "$PORT_CRON" CRON_SECRET="$SECRET" DATABASE_URL="$URL"
start_shim split "$PORT_SPLIT" CRON_SECRET="$SECRET" METRICS_SECRET="$METRICS_SECRET_VALUE" DATABASE_URL="$URL"
start_shim dev "$PORT_DEV" DATABASE_URL="$URL"

# Who may scrape.
expect "no secret: 401" "$(status_of "$(call "$PORT_CRON" /metrics)")" 401
expect "a wrong secret: 401" "$(status_of "$(call "$PORT_CRON" /metrics -H "Authorization: Bearer nope")")" 401
expect "without METRICS_SECRET, the jobs' secret: 200" \
    "$(status_of "$(call "$PORT_CRON" /metrics -H "Authorization: Bearer $SECRET")")" 200
expect "... also as X-Cron-Secret" "$(status_of "$(call "$PORT_CRON" /metrics -H "X-Cron-Secret: $SECRET")")" 200
expect "with METRICS_SECRET, that secret: 200" \
    "$(status_of "$(call "$PORT_SPLIT" /metrics -H "Authorization: Bearer $METRICS_SECRET_VALUE")")" 200
expect "... and not the jobs' secret: 401" \
    "$(status_of "$(call "$PORT_SPLIT" /metrics -H "Authorization: Bearer $SECRET")")" 401
expect "the metrics secret runs no job: 401" \
    "$(status_of "$(call "$PORT_SPLIT" /api/v1/cron/cleanup -H "Authorization: Bearer $METRICS_SECRET_VALUE")")" 401
expect "development mode (loopback only): open" "$(status_of "$(call "$PORT_DEV" /metrics)")" 200
expect "POST /metrics: 405" "$(status_of "$(call "$PORT_DEV" /metrics -X POST)")" 405
expect "no secret is logged" "$(cat "$WORK"/*.log | grep -c -- "$SECRET\|$METRICS_SECRET_VALUE" || true)" 0

# The text format by default, OpenMetrics when asked; both well-formed.
AUTH=(-H "Authorization: Bearer $SECRET")
expect "text format's content type" \
    "$(curl -sS -o /dev/null -w '%{content_type}' "${AUTH[@]}" "http://127.0.0.1:$PORT_CRON/metrics")" \
    "text/plain; version=0.0.4; charset=utf-8"
OM_ACCEPT='Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
expect "OpenMetrics' content type when asked" \
    "$(curl -sS -o /dev/null -w '%{content_type}' "${AUTH[@]}" -H "$OM_ACCEPT" "http://127.0.0.1:$PORT_CRON/metrics")" \
    "application/openmetrics-text; version=1.0.0; charset=utf-8"
metrics "$PORT_CRON" "${AUTH[@]}" >"$WORK/text.txt"
metrics "$PORT_CRON" "${AUTH[@]}" -H "$OM_ACCEPT" >"$WORK/openmetrics.txt"
promtool check metrics <"$WORK/text.txt" || die "promtool check metrics found problems"
echo "ok: promtool check metrics accepts the text format"
expect "OpenMetrics ends with # EOF" "$(tail -1 "$WORK/openmetrics.txt")" "# EOF"
expect "OpenMetrics names a counter's family without _total" \
    "$(grep -c '^# TYPE interactions_cron_tenant_rows_exported counter$' "$WORK/openmetrics.txt")" 1
expect "... and its samples with it" \
    "$(grep -c '^interactions_cron_tenant_rows_exported_total{tenant_id="tenant_a"} 0$' "$WORK/openmetrics.txt")" 1
expect "the text format names it with _total" \
    "$(grep -c '^# TYPE interactions_cron_tenant_rows_exported_total counter$' "$WORK/text.txt")" 1
expect "the database answered" "$(sample "$(cat "$WORK/text.txt")" interactions_cron_up)" 1
expect "no scrape error yet" "$(sample "$(cat "$WORK/text.txt")" interactions_cron_scrape_errors_total)" 0

# The odd tenant id: escaped as the formats require, one line per sample.
python3 - "$WORK/text.txt" "$WORK/openmetrics.txt" "$ODD_ID" <<'EOF' || die "the odd tenant id is not escaped right"
import sys
odd = sys.argv[3]
escaped = odd.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
for path in sys.argv[1:3]:
    text = open(path, encoding='utf-8', newline='').read()
    line = 'interactions_cron_tenant_rows_waiting{tenant_id="%s"} 50' % escaped
    assert line in text.split('\n'), (path, line)
    for sample in text.split('\n'):
        assert sample == '' or sample.startswith('#') or sample.startswith('interactions_cron_'), (path, sample)
EOF
echo "ok: a tenant id with quotes, backslashes and line ends is one escaped label value"

# Values against the database; a scrape runs no job.
sql -q -c "SELECT interactions_cron.export_interactions(batch_size => 20)" >/dev/null
runs_before=$(sql -c "SELECT count(*) FROM interactions_cron.job_runs")
for _ in 1 2 3; do metrics "$PORT_CRON" "${AUTH[@]}" >"$WORK/after.txt"; sleep 1.1; done
expect "scrapes run no job" "$(sql -c "SELECT count(*) FROM interactions_cron.job_runs")" "$runs_before"
page=$(cat "$WORK/after.txt")
expect "rows exported is the checkpoint's" \
    "$(sample "$page" 'interactions_cron_tenant_rows_exported_total{tenant_id="tenant_a"}')" \
    "$(sql -c "SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tenant_a'")"
expect "rows waiting are the rest" "$(sample "$page" 'interactions_cron_tenant_rows_waiting{tenant_id="tenant_a"}')" 30
expect "export runs ok are job_runs'" "$(sample "$page" 'interactions_cron_job_runs_total{job_name="export",outcome="ok"}')" 1

# Each run is one line of the server log, with its run id.
run_id=$(sql -c "SELECT max(id) FROM interactions_cron.job_runs")
within 5 grep -q "interactions_cron: export run $run_id ok in [0-9.]* s (run by postgres)" "$CLUSTER_DIR/server.log" \
    || die "no log line for run $run_id"
echo "ok: the export's run $run_id is one line of the server log"
sql -q -c "SET interactions_cron.debug_fault = 'error_before_place'" \
    -c "SELECT interactions_cron.export_interactions(tenant_id => 'tenant_b')" >/dev/null
failed_id=$(sql -c "SELECT max(id) FROM interactions_cron.job_runs")
within 5 grep -q "interactions_cron: export run $failed_id failed in [0-9.]* s" "$CLUSTER_DIR/server.log" \
    || die "no log line for the failed run $failed_id"
echo "ok: so is the failed run $failed_id"
sleep 1.1
page=$(metrics "$PORT_CRON" "${AUTH[@]}")
expect "the failure is counted" "$(sample "$page" 'interactions_cron_job_runs_total{job_name="export",outcome="failed"}')" 1
expect "tenant_b failed once in a row" "$(sample "$page" 'interactions_cron_tenant_consecutive_failures{tenant_id="tenant_b"}')" 1

# A database that is down, never answers, is locked past METRICS_TIMEOUT_MS,
# or has 1.1's objects: the answer says interactions_cron_up 0, in time.
DEAD_PG=$(free_port); PORT_DOWN=$(free_port)
start_shim down "$PORT_DOWN" DATABASE_URL="host=127.0.0.1 port=$DEAD_PG dbname=$DB user=postgres" METRICS_TIMEOUT_MS=1000
page=$(metrics "$PORT_DOWN" --max-time 5)
expect "database down: interactions_cron_up 0" "$(sample "$page" interactions_cron_up)" 0
expect "... counted as a scrape error" "$(sample "$page" interactions_cron_scrape_errors_total)" 1

HOLE_PG=$(free_port)
$HOSTILE blackhole "$HOLE_PG" 60 "$WORK/hole_open" &
helper_pids+=($!)
within 5 test -s "$WORK/hole_open" || die "the black hole did not start"
PORT_HOLE=$(free_port)
start_shim hole "$PORT_HOLE" DATABASE_URL="host=127.0.0.1 port=$HOLE_PG dbname=$DB user=postgres" METRICS_TIMEOUT_MS=1000
page=$(metrics "$PORT_HOLE" --max-time 5) || die "a database that never answers held the scrape past 5 s"
expect "a database that never answers: interactions_cron_up 0 within the deadline" "$(sample "$page" interactions_cron_up)" 0
promtool check metrics <<<"$page" || die "the answer without the database is not well-formed"

PORT_SLOW=$(free_port)
start_shim slow "$PORT_SLOW" DATABASE_URL="$URL" METRICS_TIMEOUT_MS=1000
psql -X -q -d "$DB" -c "SET application_name = 'metrics_test_locker'" -c "BEGIN" \
    -c "LOCK TABLE interaction_history IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(30)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
locked() { [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'metrics_test_locker' AND wait_event = 'PgSleep'")" = 1 ]; }
within 5 locked || die "the lock was not taken"
page=$(metrics "$PORT_SLOW" --max-time 5) || die "a locked table held the scrape past 5 s"
expect "a locked table: interactions_cron_up 0 within the deadline" "$(sample "$page" interactions_cron_up)" 0
no_waiting_scrape() { [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'interactions-cron-http' AND datname = '$DB'")" = 0 ]; }
within 5 no_waiting_scrape || die "the scrape's backend outlived its deadline"
echo "ok: ... and its backend is gone"
grep -q 'canceling statement due to statement timeout\|did not answer in time' "$WORK/slow.log" \
    || die "the shim did not log why: $(cat "$WORK/slow.log")"
sql -q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'metrics_test_locker'" >/dev/null
wait "$locker" || true

OLD_DB=${DB}_1_1
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $OLD_DB" -c "CREATE DATABASE $OLD_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$OLD_DB" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION interactions_cron VERSION '1.1'" -f "$REPO_ROOT/reference/schema.sql" >/dev/null
PORT_OLD=$(free_port)
start_shim old "$PORT_OLD" DATABASE_URL="host=$PGHOST port=$PGPORT dbname=$OLD_DB user=postgres"
expect "SQL objects of 1.1: interactions_cron_up 0" "$(sample "$(metrics "$PORT_OLD")" interactions_cron_up)" 0
grep -q 'the metrics query failed: .*(SQLSTATE 42883)' "$WORK/old.log" || die "no log line says why: $(cat "$WORK/old.log")"
echo "ok: ... and the shim's log says why"

# Bytes that are not UTF-8 (a SQL_ASCII database holds any): U+FFFD, and
# the page stays well-formed.
ASCII_DB=${DB}_sql_ascii
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $ASCII_DB" \
    -c "CREATE DATABASE $ASCII_DB ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
psql -X -q -v ON_ERROR_STOP=1 -d "$ASCII_DB" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/reference/schema.sql" \
    -c "INSERT INTO tenants (id, name) VALUES (E'bad\\xff\\xc3(id\\xe2\\x82', 'Bad'), (E'good\\xc3\\xa9', 'Good')" >/dev/null
PORT_ASCII=$(free_port)
start_shim ascii "$PORT_ASCII" DATABASE_URL="host=$PGHOST port=$PGPORT dbname=$ASCII_DB user=postgres"
metrics "$PORT_ASCII" >"$WORK/ascii.txt"
promtool check metrics <"$WORK/ascii.txt" || die "bytes that are not UTF-8 broke the exposition"
python3 - "$WORK/ascii.txt" <<'EOF' || die "bytes that are not UTF-8 were not replaced"
import sys
text = open(sys.argv[1], 'rb').read().decode('utf-8')   # strict: fails on any invalid byte
assert 'interactions_cron_tenant_rows_waiting{tenant_id="bad\ufffd\ufffd(id\ufffd\ufffd"} 0' in text, text
assert 'interactions_cron_tenant_rows_waiting{tenant_id="good\u00e9"} 0' in text, text
EOF
echo "ok: bytes that are not UTF-8 become U+FFFD, valid UTF-8 stays as it is"

# The alert rules' own tests, on synthetic series.
promtool check rules "$RULES_DIR/alerts.yml"
(cd "$RULES_DIR" && promtool test rules alerts_test.yml)
echo "ok: promtool test rules"

# A real Prometheus on 127.0.0.1 scrapes the shim (with the metrics secret,
# as a credentials file) every second while exports run, evaluates the alert
# rules, and answers through its query API.
PROM_PORT=$(free_port)
mkdir -p "$WORK/prometheus"
printf '%s' "$METRICS_SECRET_VALUE" >"$WORK/prometheus/secret"
cat >"$WORK/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES_DIR/alerts.yml
scrape_configs:
  - job_name: interactions_cron
    authorization:
      credentials_file: $WORK/prometheus/secret
    static_configs:
      - targets: ['127.0.0.1:$PORT_SPLIT']
EOF
prometheus --config.file="$WORK/prometheus/prometheus.yml" --storage.tsdb.path="$WORK/prometheus/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn 2>"$WORK/prometheus.log" &
PROM_PID=$!
helper_pids+=($PROM_PID)
PROM="http://127.0.0.1:$PROM_PORT"
within 30 curl -sf -o /dev/null "$PROM/-/ready" || die "Prometheus did not start: $(cat "$WORK/prometheus.log")"
echo "ok: Prometheus runs on 127.0.0.1:$PROM_PORT"
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at)
           SELECT 'tenant_a', now() - interval '1 hour' + g * interval '1 second' FROM generate_series(1, 200) g"
for _ in 1 2 3 4 5; do
    curl -sS -o /dev/null -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_SPLIT/api/v1/cron/export-interactions"
    sleep 0.5
done
expected_rows=$(sql -c "SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 'tenant_a'")
expected_runs=$(sql -c "SELECT count(*) FROM interactions_cron.job_runs WHERE job = 'export' AND ok")
# prom_value QUERY: the first value of an instant query's result, or "".
prom_value() {
    curl -sS --get "$PROM/api/v1/query" --data-urlencode "query=$1" \
        | python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
ROWS_QUERY='interactions_cron_tenant_rows_exported_total{job="interactions_cron",tenant_id="tenant_a"}'
RUNS_QUERY='interactions_cron_job_runs_total{job="interactions_cron",job_name="export",outcome="ok"}'
arrived() { [ "$(prom_value "$ROWS_QUERY")" = "$expected_rows" ] && [ "$(prom_value "$RUNS_QUERY")" = "$expected_runs" ]; }
within 30 arrived || die "Prometheus has not the series: rows $(prom_value "$ROWS_QUERY") (not $expected_rows), runs $(prom_value "$RUNS_QUERY") (not $expected_runs)"
echo "ok: Prometheus has tenant_a's $expected_rows exported rows and the $expected_runs export runs, labelled job_name"
expect "Prometheus sees the shim up" "$(prom_value 'up{job="interactions_cron"}')" 1
expect "... and the database up" "$(prom_value 'interactions_cron_up{job="interactions_cron"}')" 1
curl -sS --get "$PROM/api/v1/series" --data-urlencode 'match[]=interactions_cron_tenant_rows_waiting' >"$WORK/series.json"
python3 - "$WORK/series.json" "$ODD_ID" <<'EOF' || die "the odd tenant id did not arrive intact in Prometheus"
import json, sys
ids = {s['tenant_id'] for s in json.load(open(sys.argv[1]))['data']}
assert sys.argv[2] in ids, sorted(ids)
EOF
echo "ok: the odd tenant id arrived in Prometheus byte for byte"
curl -sS "$PROM/api/v1/targets" >"$WORK/targets.json"
python3 - "$WORK/targets.json" <<'EOF' || die "the scrape target is not healthy: $(cat "$WORK/targets.json")"
import json, sys
targets = json.load(open(sys.argv[1]))['data']['activeTargets']
assert len(targets) == 1 and targets[0]['health'] == 'up' and targets[0]['lastError'] == '', targets
EOF
echo "ok: the scrape has no error"
rules_evaluated() {
    curl -sS "$PROM/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
sys.exit(0 if len(rules) == 6 and all(r["health"] == "ok" and r.get("lastEvaluation", "0001").startswith("20") for r in rules) else 1)'
}
within 10 rules_evaluated || die "the alert rules are not all evaluated without error: $(curl -sS "$PROM/api/v1/rules")"
echo "ok: Prometheus evaluates the six alert rules on the live series without error"

kill "$PROM_PID"
wait "$PROM_PID" || true
echo "ok: Prometheus stopped"
