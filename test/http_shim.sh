#!/usr/bin/env bash
# The HTTP shim with real curl on 127.0.0.1: authentication (Bearer,
# X-Cron-Secret, wrong and missing secrets, development mode), 404, 405,
# health with the database up and down, SQL failures as 500, a long export
# not blocking health checks, malformed, oversized and slow requests, the
# secret never logged, and SIGTERM finishing the request in flight.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

SHIM=${SHIM:-/usr/lib/postgresql/15/bin/interactions-cron-http}
DB=interactions_cron_http
SECRET='s3cr3t-Value-for-tests'
WORK=$(mktemp -d /tmp/interactions_cron_http.XXXXXX)
shim_pids=()
cleanup_shims() {
    for pid in "${shim_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup_shims EXIT

sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
expect() {
    local what=$1 actual=$2 expected=$3
    [ "$actual" = "$expected" ] || die "$what: expected '$expected', got '$actual'"
    echo "ok: $what"
}
is_json() { python3 -c 'import json, sys; json.loads(sys.stdin.read())' <<<"$1"; }

# start_shim NAME PORT [VAR=VALUE ...]: runs the shim in the background,
# logging to $WORK/NAME.log, and waits until it listens.
start_shim() {
    local name=$1 port=$2
    shift 2
    env -i PATH="$PATH" HOST=127.0.0.1 PORT="$port" STATEMENT_TIMEOUT_MS=60000 "$@" \
        "$SHIM" 2>"$WORK/$name.log" &
    shim_pids+=($!)
    for _ in $(seq 50); do
        grep -q listening "$WORK/$name.log" && return 0
        sleep 0.1
    done
    cat "$WORK/$name.log"
    die "shim $name did not start"
}

# call PORT PATH [curl args]: prints "STATUS BODY".
call() {
    local port=$1 path=$2
    shift 2
    curl -sS -o "$WORK/body" -w '%{http_code}' "$@" "http://127.0.0.1:$port$path" >"$WORK/status"
    printf '%s %s' "$(cat "$WORK/status")" "$(cat "$WORK/body")"
}
status_of() { cut -d' ' -f1 <<<"$1"; }
body_of() { cut -d' ' -f2- <<<"$1"; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" \
    -c "ALTER DATABASE $DB SET interactions_cron.export_dir = '$CLUSTER_DIR/http_exports'"
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q -c "INSERT INTO tenants (id, name) VALUES ('tenant_001', 'Acme Corp'), ('tenant_002', 'Beta Inc')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at) SELECT t, now() - interval '1 hour' + g * interval '1 second'
        FROM unnest(ARRAY['tenant_001', 'tenant_002']) t, generate_series(1, 100) g"

URL="host=$PGHOST port=$PGPORT dbname=$DB user=postgres"
PORT_A=$(free_port); PORT_DEV=$(free_port); PORT_DOWN=$(free_port); DEAD_PG=$(free_port)
start_shim main "$PORT_A" CRON_SECRET="$SECRET" DATABASE_URL="$URL"
start_shim dev "$PORT_DEV" DATABASE_URL="$URL"
start_shim down "$PORT_DOWN" CRON_SECRET="$SECRET" DATABASE_URL="host=127.0.0.1 port=$DEAD_PG dbname=$DB user=postgres connect_timeout=2"
EXPORT=/api/v1/cron/export-interactions
CLEANUP=/api/v1/cron/cleanup

# Authentication.
r=$(call "$PORT_A" "$EXPORT"); expect "no header: 401" "$(status_of "$r")" 401; is_json "$(body_of "$r")"
expect "401 challenges with Bearer" "$(curl -sS -o /dev/null -D - "http://127.0.0.1:$PORT_A$EXPORT" | grep -ci '^WWW-Authenticate: Bearer')" 1
for wrong in "Authorization: Bearer nope" "Authorization: Bearer ${SECRET:0:10}" "Authorization: Bearer ${SECRET}x" \
             "Authorization: Basic $SECRET" "X-Cron-Secret: nope" "X-Cron-Secret: " "X-Cron-Secret: ${SECRET^^}"; do
    expect "wrong secret ($(cut -d: -f1 <<<"$wrong")): 401" "$(status_of "$(call "$PORT_A" "$EXPORT" -H "$wrong")")" 401
done
expect "nothing was exported by unauthorized calls" "$(sql -c "SELECT count(*) FROM interactions_cron.job_runs")" 0

r=$(call "$PORT_A" "$EXPORT" -H "Authorization: Bearer $SECRET")
expect "Bearer: 200" "$(status_of "$r")" 200
expect "the export's JSON is the SQL result recorded for the call" \
    "$(sql -c "SELECT result = \$json\$$(body_of "$r")\$json\$::jsonb FROM interactions_cron.job_runs WHERE job = 'export' ORDER BY id DESC LIMIT 1")" t
expect "the export exported every row" "$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["totalExported"])' <<<"$(body_of "$r")")" 200
expect "JSON content type" "$(curl -sS -o /dev/null -D - -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_A$EXPORT" | grep -ci '^Content-Type: application/json')" 1

r=$(call "$PORT_A" "$CLEANUP" -H "X-Cron-Secret: $SECRET")
expect "X-Cron-Secret: 200" "$(status_of "$r")" 200
expect "the cleanup's JSON is the SQL result recorded for the call" \
    "$(sql -c "SELECT result = \$json\$$(body_of "$r")\$json\$::jsonb FROM interactions_cron.job_runs WHERE job = 'cleanup' ORDER BY id DESC LIMIT 1")" t
expect "lower-case bearer scheme is accepted" "$(status_of "$(call "$PORT_A" "$CLEANUP" -H "Authorization: bearer $SECRET")")" 200

# Development mode: no secret, open endpoints, a loud warning.
expect "development mode: 200 without a header" "$(status_of "$(call "$PORT_DEV" "$CLEANUP")")" 200
expect "development mode is announced" "$(grep -c 'DEVELOPMENT MODE' "$WORK/dev.log")" 1

# Routing.
r=$(call "$PORT_A" /nope -H "Authorization: Bearer $SECRET"); expect "unknown path: 404" "$(status_of "$r")" 404; is_json "$(body_of "$r")"
expect "path below an endpoint: 404" "$(status_of "$(call "$PORT_A" "$EXPORT/x" -H "Authorization: Bearer $SECRET")")" 404
r=$(call "$PORT_A" "$EXPORT" -X POST -H "Authorization: Bearer $SECRET" -d 'x=1'); expect "POST: 405" "$(status_of "$r")" 405; is_json "$(body_of "$r")"
expect "405 says Allow: GET" "$(curl -sS -o /dev/null -D - -X DELETE "http://127.0.0.1:$PORT_A$CLEANUP" | grep -ci '^Allow: GET')" 1

# Health.
r=$(call "$PORT_A" /healthz); expect "health with the database up: 200" "$(status_of "$r")" 200; is_json "$(body_of "$r")"
r=$(call "$PORT_DOWN" /healthz); expect "health with the database down: 503" "$(status_of "$r")" 503; is_json "$(body_of "$r")"
r=$(call "$PORT_DOWN" "$EXPORT" -H "Authorization: Bearer $SECRET")
expect "export with the database down: 500" "$(status_of "$r")" 500
expect "the 500 names no connection detail" "$(body_of "$r" | grep -c "$DEAD_PG\|host=\|user=" || true)" 0

# A failing SQL call answers 500 with PostgreSQL's message and SQLSTATE.
sql -q -c "ALTER DATABASE $DB SET interactions_cron.partitioned_tables = 'public.no_such_table'"
r=$(call "$PORT_A" "$CLEANUP" -H "X-Cron-Secret: $SECRET")
sql -q -c "ALTER DATABASE $DB RESET interactions_cron.partitioned_tables"
expect "failed cleanup: 500" "$(status_of "$r")" 500
expect "the 500 carries the SQLSTATE" "$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["sqlstate"])' <<<"$(body_of "$r")")" 42P01

# A long export does not block a health check or a second export.
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('tenant_001', now() - interval '1 minute')"
psql -X -q -d "$DB" -c "BEGIN" -c "LOCK TABLE interaction_history IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
locker=$!
sleep 0.5
curl -sS -o "$WORK/long_body" -w '%{http_code}' -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_A$EXPORT" >"$WORK/long_status" &
long_export=$!
curl -sS -o "$WORK/second_body" -w '%{http_code}' -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_A$EXPORT" >"$WORK/second_status" &
second_export=$!
sleep 0.3
expect "health answers during a long export" "$(status_of "$(call "$PORT_A" /healthz)")" 200
kill -0 "$long_export" 2>/dev/null || die "the long export finished too early to prove anything"
echo "ok: ... while that export is still waiting"
wait "$long_export"; wait "$second_export"; wait "$locker"
expect "the long export then succeeds" "$(cat "$WORK/long_status")" 200
expect "so does the export started beside it" "$(cat "$WORK/second_status")" 200
expect "between them the new row was exported once" \
    "$(python3 -c 'import json,sys; print(sum(json.load(open(f))["totalExported"] for f in sys.argv[1:]))' "$WORK/long_body" "$WORK/second_body")" 1
expect "no row is in two files" \
    "$(duplicated_ids_and_lines "$CLUSTER_DIR/http_exports")" \
    "0 201"

# Malformed, oversized and slow requests get 4xx and leave the daemon alive.
# raw_status_line REQUEST: sends raw bytes and prints the response's status line.
raw_status_line() {
    local line=""
    exec 3<>"/dev/tcp/127.0.0.1/$PORT_A"
    printf "$1" >&3
    read -r -t 5 line <&3 || true
    exec 3<&-
    tr -d '\r' <<<"$line"
}
# raw_status_code REQUEST: the status code of a malformed request.  The
# server closes such a connection at once; a close racing the client's read
# can reset it before the answer is read, so an empty answer is tried again.
raw_status_code() {
    local line=""
    for _ in 1 2 3; do
        line=$(raw_status_line "$1")
        [ -n "$line" ] && break
    done
    cut -d' ' -f2 <<<"$line"
}
expect "malformed header line: 400" "$(raw_status_code 'GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n')" 400
expect "empty path: 400" "$(raw_status_code 'GET  HTTP/1.1\r\nHost: x\r\n\r\n')" 400
expect "unknown HTTP version: 505" "$(raw_status_code 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n')" 505
expect "not HTTP at all: the connection is closed" "$(raw_status_line 'NONSENSE\r\n\r\n')" ""
big=$(head -c 40000 /dev/zero | tr '\0' 'a')
code=$(status_of "$(call "$PORT_A" /healthz -H "X-Big: $big")")
[[ "$code" =~ ^4[0-9][0-9]$ ]] || die "oversized header: expected 4xx, got $code"
echo "ok: oversized header: $code"
code=$(status_of "$(call "$PORT_A" "/healthz?$big")")
[[ "$code" =~ ^4[0-9][0-9]$ ]] || die "oversized URL: expected 4xx, got $code"
echo "ok: oversized URL: $code"
exec 4<>"/dev/tcp/127.0.0.1/$PORT_A"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&4
expect "a slow client does not block others" "$(status_of "$(call "$PORT_A" /healthz)")" 200
exec 4<&-
expect "the daemon is alive after all of that" "$(status_of "$(call "$PORT_A" /healthz)")" 200

# The secret never reaches a log; every request has one line.
expect "the secret is never logged" "$(cat "$WORK"/*.log | grep -c -- "$SECRET" || true)" 0
grep -q "GET \"/api/v1/cron/export-interactions\" 200 " "$WORK/main.log" || die "no log line for the export"
echo "ok: one log line per request: $(grep -c ' GET \| POST \| DELETE ' "$WORK/main.log") lines"

# SIGTERM: the request in flight finishes, then the shim exits 0.
psql -X -q -d "$DB" -c "BEGIN" -c "LOCK TABLE interaction_history IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
locker=$!
sleep 0.5
curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_A$EXPORT" >"$WORK/term_status" &
in_flight=$!
sleep 0.3
kill -TERM "${shim_pids[0]}"
sleep 0.3
if curl -sS -m 2 "http://127.0.0.1:$PORT_A/healthz" >/dev/null 2>&1; then
    die "the shim still accepted requests after SIGTERM"
fi
echo "ok: no new requests after SIGTERM"
wait "$in_flight"; wait "$locker"
expect "the request in flight finished" "$(cat "$WORK/term_status")" 200
wait "${shim_pids[0]}"; expect "the shim exited 0" "$?" 0
grep -q 'stopped' "$WORK/main.log" || die "the shim did not say it stopped"
echo "ok: the shim stopped cleanly"
