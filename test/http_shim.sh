#!/usr/bin/env bash
# The HTTP shim with real curl on 127.0.0.1: authentication (Bearer,
# X-Cron-Secret, CRON_SECRET_FILE, wrong and missing secrets, development
# mode and where it may listen), 404, 405, 413 for any body, health with the
# database up and down and cached, SQL failures as 500, ?max_runtime= within
# MAX_RUNTIME_LIMIT_MS, a long export not
# blocking health checks, malformed, oversized and slow requests, caps and
# deadlines against hostile clients (test/http_hostile.py), a database that
# never answers, clients that leave mid-call, escaped log lines, the secret
# never logged nor left in /proc/<pid>/environ, SIGTERM, and /metrics linted
# by promtool.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"

DB=interactions_cron_http
SECRET='s3cr3t-Value-for-tests'

threads_of() { ls "/proc/$1/task" | wc -l; }
shim_backends() { psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'interactions-cron-http'"; }

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
MAIN_PID=$shim_pid
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
r=$(call "$PORT_A" "$EXPORT" -X POST -H "Authorization: Bearer $SECRET"); expect "POST: 405" "$(status_of "$r")" 405; is_json "$(body_of "$r")"
expect "405 says Allow: GET" "$(curl -sS -o /dev/null -D - -X DELETE "http://127.0.0.1:$PORT_A$CLEANUP" | grep -ci '^Allow: GET')" 1

# Health.
r=$(call "$PORT_A" /healthz); expect "health with the database up: 200" "$(status_of "$r")" 200; is_json "$(body_of "$r")"
r=$(call "$PORT_DOWN" /healthz); expect "health with the database down: 503" "$(status_of "$r")" 503; is_json "$(body_of "$r")"
r=$(call "$PORT_DOWN" "$EXPORT" -H "Authorization: Bearer $SECRET")
expect "export with the database down: 500" "$(status_of "$r")" 500
expect "the 500 names no connection detail" "$(body_of "$r" | grep -c "$DEAD_PG\|host=\|user=" || true)" 0

# /metrics takes the jobs' secret, and its text passes Prometheus's own lint
# (the metrics suite, test/metrics.sh, tests the rest).
expect "/metrics without the secret: 401" "$(status_of "$(call "$PORT_A" /metrics)")" 401
curl -sS -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_A/metrics" >"$WORK/metrics.txt"
expect "/metrics reads the database" "$(grep -c '^interactions_cron_up 1$' "$WORK/metrics.txt")" 1
promtool check metrics <"$WORK/metrics.txt" || die "promtool check metrics: the exposition has problems"
echo "ok: promtool check metrics accepts /metrics"

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
    "0 $(sql -c "SELECT count(*) FROM interaction_history")"

# Malformed, oversized and slow requests get 4xx and leave the daemon alive.
# raw_status_line REQUEST: sends raw bytes (printf escapes) and prints the
# response's status line.  The answer is taken in whole reads: a server that
# closes with bytes of the request unread (libmicrohttpd 1.0 after a bad
# request line) resets the connection, which a byte-at-a-time reader (bash's
# read) can meet before the status line.
raw_status_line() {
    printf "$1" | python3 -c '
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
answer = b""
try:
    sock.sendall(sys.stdin.buffer.read())
    while b"\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
except OSError:
    pass
print(answer.split(b"\n")[0].decode(errors="replace").rstrip("\r"))
' "$PORT_A"
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

# A time budget: ?max_runtime=<seconds> drains busy tenants, bounded by
# MAX_RUNTIME_LIMIT_MS (here half the 60 s statement timeout: 30 s).
sql -q -c "ALTER DATABASE $DB SET interactions_cron.batch_size = 10" \
    -c "INSERT INTO tenants (id, name) VALUES ('tenant_drain', 'Drain')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at) SELECT 'tenant_drain', now() - interval '30 minutes' + g * interval '1 second'
        FROM generate_series(1, 35) g"
# (A tenant of its own: the earlier calls moved the others' checkpoints past these rows.)
tenant_drain_of() { python3 -c 'import json,sys; t=[t for t in json.loads(sys.stdin.read())["tenants"] if t["tenantId"]=="tenant_drain"][0]; print(t["exported"], t["batches"], t["caughtUp"])'; }
r=$(call "$PORT_A" "$EXPORT?max_runtime=0" -H "Authorization: Bearer $SECRET")
expect "max_runtime=0: one batch, not caught up" "$(status_of "$r") $(tenant_drain_of <<<"$(body_of "$r")")" "200 10 1 False"
r=$(call "$PORT_A" "$EXPORT?max_runtime=30" -H "Authorization: Bearer $SECRET")
expect "max_runtime=30 (the limit): every batch until caught up" "$(status_of "$r") $(tenant_drain_of <<<"$(body_of "$r")")" "200 25 3 True"
expect "the budgeted call is recorded with its batches" \
    "$(sql -c "SELECT t->>'batches' FROM interactions_cron.job_runs, jsonb_array_elements(result->'tenants') t
              WHERE id = (SELECT max(id) FROM interactions_cron.job_runs WHERE job = 'export') AND t->>'tenantId' = 'tenant_drain'")" 3
runs_before=$(sql -c "SELECT count(*) FROM interactions_cron.job_runs")
for refused in 31 -1 1.5 10s "1%20hour" "" 9999999999; do
    r=$(call "$PORT_A" "$EXPORT?max_runtime=$refused" -H "Authorization: Bearer $SECRET")
    expect "max_runtime=$refused: 400" "$(status_of "$r")" 400; is_json "$(body_of "$r")"
done
expect "the 400 says the limit" "$(body_of "$r" | grep -c 'from 0 to 30 (MAX_RUNTIME_LIMIT_MS)')" 1
r=$(call "$PORT_A" "$CLEANUP?max_runtime=5" -H "Authorization: Bearer $SECRET")
expect "cleanup takes no max_runtime: 400" "$(status_of "$r")" 400
expect "a refused budget needs the secret first: 401" "$(status_of "$(call "$PORT_A" "$EXPORT?max_runtime=31")")" 401
expect "refused budgets ran nothing" "$(sql -c "SELECT count(*) FROM interactions_cron.job_runs")" "$runs_before"
sql -q -c "ALTER DATABASE $DB RESET interactions_cron.batch_size"

# The secret never reaches a log; every request has one line.
expect "the secret is never logged" "$(cat "$WORK"/*.log | grep -c -- "$SECRET" || true)" 0
grep -q '"GET" "/api/v1/cron/export-interactions" 200 ' "$WORK/main.log" || die "no log line for the export"
echo "ok: one log line per request: $(grep -c ' "GET" \| "POST" \| "DELETE" ' "$WORK/main.log") lines"

# Log lines escape whatever a client sent: no control byte reaches the log.
call "$PORT_A" /x -X $'G\e[31mET' >/dev/null
call "$PORT_A" '/y%1b%5b31m%0dFAKE%0a' >/dev/null
within 2 grep -qF '"G\x1b[31mET" "/x" 404 ' "$WORK/main.log" || die "no escaped log line for a method with an escape sequence"
echo "ok: a method with an escape sequence is logged escaped"
# (Newer curl, as in sid, sends the escapes' hex digits in capitals.)
within 2 grep -qiF '"GET" "/y%1b%5b31m%0dFAKE%0a" 404 ' "$WORK/main.log" ||
    die "no log line with the raw %-escaped path; logged: $(grep -F '"/y' "$WORK/main.log" | tail -2)"
echo "ok: a path with %-escaped control bytes is logged as sent"
raw_status_code 'GET /z\x1b[31m\x7f HTTP/1.1\r\nHost: x\r\n\r\n' >/dev/null
within 2 grep -qF '"GET" "/z\x1b[31m\x7f" 404 ' "$WORK/main.log" || die "no escaped log line for a path with control bytes"
echo "ok: a path with control bytes is logged escaped"
# The path is logged as the client sent it: a NUL it escapes does not cut
# the logged path short (libmicrohttpd decodes %00 into one), and the
# request is routed by that path too: 404, or 400 where libmicrohttpd
# refuses the escaped NUL itself (1.0 in sid), never /healthz's 200.
healthz_lines=$(grep -c '"/healthz" ' "$WORK/main.log")
r=$(call "$PORT_A" '/healthz%00x')
code=$(status_of "$r")
[[ "$code" = 404 || "$code" = 400 ]] || die "a path with an escaped NUL is not /healthz: expected 404 or 400, got $code"
echo "ok: a path with an escaped NUL is not /healthz: $code"
if [ "$code" = 404 ]; then
    within 2 grep -qF '"GET" "/healthz%00x" 404 ' "$WORK/main.log" ||
        die "no log line with the raw path /healthz%00x; logged: $(grep -F '"/healthz%' "$WORK/main.log" | tail -2)"
    echo "ok: a path with an escaped NUL is logged as sent"
else
    # Refused by libmicrohttpd before any route: no line of ours, and none as /healthz.
    sleep 0.5
    expect "a path with an escaped NUL is not logged as /healthz" "$(grep -c '"/healthz" ' "$WORK/main.log")" "$healthz_lines"
fi
expect "no log holds a control byte" "$(cat "$WORK"/*.log | LC_ALL=C grep -c $'[\x01-\x09\x0b-\x1f\x7f]' || true)" 0

# The secret (and DATABASE_URL, which may hold a password) is gone from the
# environment block, not just from the environment.
expect "the secret is not in /proc/<pid>/environ" "$(tr '\0' '\n' <"/proc/$MAIN_PID/environ" | grep -c -- "$SECRET" || true)" 0
expect "neither is DATABASE_URL" "$(tr '\0' '\n' <"/proc/$MAIN_PID/environ" | grep -c -- "dbname=$DB" || true)" 0
if [ "$(id -u)" -eq 0 ]; then
    expect "running as root is warned about" "$(grep -c 'WARNING: running as root' "$WORK/main.log")" 1
else
    echo "skip: not root, so no warning about running as root to check"
fi

# CRON_SECRET_FILE: the secret from a file, without its trailing newline.
printf '%s\n' "$SECRET" >"$WORK/secret"
chmod 600 "$WORK/secret"
PORT_FILE=$(free_port)
start_shim file "$PORT_FILE" CRON_SECRET_FILE="$WORK/secret" DATABASE_URL="$URL"
expect "CRON_SECRET_FILE: no header: 401" "$(status_of "$(call "$PORT_FILE" "$CLEANUP")")" 401
expect "CRON_SECRET_FILE: the file's secret: 200" "$(status_of "$(call "$PORT_FILE" "$CLEANUP" -H "Authorization: Bearer $SECRET")")" 200
expect "CRON_SECRET_FILE: not development mode" "$(grep -c 'DEVELOPMENT MODE' "$WORK/file.log" || true)" 0

# start_refused NAME [VAR=VALUE ...]: runs a shim that must refuse to start
# (bounded by timeout) and prints its exit status.
start_refused() {
    local name=$1
    shift
    timeout 5 env -i PATH="$PATH" HOST=127.0.0.1 PORT="$(free_port)" DATABASE_URL="$URL" "$@" \
        "$SHIM" 2>"$WORK/$name.log" && echo 0 || echo $?
}
: >"$WORK/empty_secret"
expect "CRON_SECRET and CRON_SECRET_FILE both set: refused" \
    "$(start_refused both CRON_SECRET=x CRON_SECRET_FILE="$WORK/secret") $(grep -c 'not both' "$WORK/both.log")" "2 1"
expect "an empty CRON_SECRET: refused, not development mode" \
    "$(start_refused empty_env CRON_SECRET=) $(grep -c 'CRON_SECRET is set but empty' "$WORK/empty_env.log") $(grep -c 'DEVELOPMENT MODE' "$WORK/empty_env.log" || true)" "2 1 0"
expect "an empty CRON_SECRET_FILE: refused, not development mode" \
    "$(start_refused empty CRON_SECRET_FILE="$WORK/empty_secret") $(grep -c 'is empty' "$WORK/empty.log")" "2 1"
expect "a missing CRON_SECRET_FILE: refused" \
    "$(start_refused missing CRON_SECRET_FILE="$WORK/no_such_file") $(grep -c 'could not open' "$WORK/missing.log")" "2 1"
expect "MAX_RUNTIME_LIMIT_MS not below STATEMENT_TIMEOUT_MS: refused" \
    "$(start_refused budget CRON_SECRET=x STATEMENT_TIMEOUT_MS=60000 MAX_RUNTIME_LIMIT_MS=60000) $(grep -c 'must be less than STATEMENT_TIMEOUT_MS' "$WORK/budget.log")" "2 1"
# 192.0.2.1 (TEST-NET-1) is on no interface: nothing listens beyond loopback.
expect "development mode on a non-loopback HOST: refused" \
    "$(start_refused open_host HOST=192.0.2.1) $(grep -c 'refusing to listen on 192.0.2.1 without CRON_SECRET' "$WORK/open_host.log")" "2 1"
start_refused allowed_host HOST=192.0.2.1 ALLOW_UNAUTHENTICATED=1 >/dev/null
expect "... unless ALLOW_UNAUTHENTICATED=1 (which then only fails to bind)" \
    "$(grep -c 'refusing' "$WORK/allowed_host.log" || true) $(grep -c 'DEVELOPMENT MODE' "$WORK/allowed_host.log")" "0 1"

# /healthz answers from a one-second cache: hammering it does not fork a
# backend per request.
sessions() { psql -X -At -d postgres -c "SELECT sessions FROM pg_stat_database WHERE datname = '$DB'"; }
sleep 1.1
before=$(sessions)
started=$(date +%s)
seq 150 | xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' -m 5 "http://127.0.0.1:$PORT_A/healthz" >"$WORK/hammer"
seconds=$(($(date +%s) - started + 1))
sleep 0.5
new_backends=$(($(sessions) - before))
expect "150 hammered health checks all answered 200" "$(grep -c '^200$' "$WORK/hammer")" 150
[ "$new_backends" -le $((seconds + 2)) ] || die "/healthz opened $new_backends backends for 150 requests in about $seconds s"
echo "ok: 150 health checks in about $seconds s opened $new_backends backend(s)"

# Hostile clients: bodies are never read, request heads have an absolute
# deadline, connections are capped per client address and in all, and slow
# connections make room for new clients.
PORT_HOSTILE=$(free_port)
start_shim hostile "$PORT_HOSTILE" CRON_SECRET="$SECRET" DATABASE_URL="$URL" HEADER_TIMEOUT_MS=2000 \
    MAX_CONNECTIONS=64 MAX_CONNECTIONS_PER_CLIENT=8
HOSTILE_PID=$shim_pid
expect "a huge body announced and trickled: 413 at once, connection closed" "$($HOSTILE slow "$PORT_HOSTILE" body 4)" "closed 413"
expect "a chunked body: 413" "$(status_of "$(call "$PORT_HOSTILE" /healthz -H 'Transfer-Encoding: chunked' --data-binary x)")" 413
expect "a GET with a body: 413" "$(status_of "$(call "$PORT_HOSTILE" /healthz -X GET --data-binary x)")" 413
expect "a request head trickled a byte every 0.3 s is cut at the 2 s deadline" "$($HOSTILE slow "$PORT_HOSTILE" head 4)" "closed -"
expect "an idle connection is closed at the deadline" "$($HOSTILE slow "$PORT_HOSTILE" idle 4)" "closed -"
sleep 0.3
expect "per-client cap: of 12 idle connections from one address, the newest 8 stay" \
    "$($HOSTILE cap "$PORT_HOSTILE" 12 127.0.0.9 1)" "4-11"
sleep 0.3
expect "global cap: of 100 idle connections from 100 addresses, the newest 64 stay" \
    "$($HOSTILE cap "$PORT_HOSTILE" 100 127.0.1.1 100)" "36-99"

$HOSTILE flood "$PORT_HOSTILE" 200 20 60 >"$WORK/flood.out" &
flood=$!
helper_pids+=($flood)
within 10 grep -q ready "$WORK/flood.out" || die "the flood did not start"
sleep 1
for i in 1 2 3; do
    expect "with 200 hostile connections open, /healthz answers within 1 s ($i)" \
        "$(status_of "$(call "$PORT_HOSTILE" /healthz --max-time 1)")" 200
    expect "... and an authorised export within 1 s ($i)" \
        "$(status_of "$(call "$PORT_HOSTILE" "$EXPORT" --max-time 1 -H "Authorization: Bearer $SECRET")")" 200
done
threads=$(threads_of "$HOSTILE_PID")
[ "$threads" -le 140 ] || die "the shim runs $threads threads under the flood (caps: 64 connections)"
echo "ok: the shim runs $threads threads under the flood"
kill -TERM "$flood"
wait "$flood" || true
grep -q '^opened' "$WORK/flood.out" || die "the flood did not report"
echo "ok: flood: $(grep '^opened' "$WORK/flood.out")"

# A database that accepts connections and never answers: every wait is
# bounded, and a client that leaves takes its thread and connection along.
HOLE_PG=$(free_port)
$HOSTILE blackhole "$HOLE_PG" 120 "$WORK/hole_open" &
helper_pids+=($!)
within 5 test -s "$WORK/hole_open" || die "the black hole did not start"
hole_empty() { [ "$(cat "$WORK/hole_open")" = 0 ]; }
threads_back() { [ "$(threads_of "$1")" -le "$2" ]; }
HOLE_URL="host=127.0.0.1 port=$HOLE_PG dbname=$DB user=postgres"
PORT_HOLE=$(free_port)
start_shim hole "$PORT_HOLE" CRON_SECRET="$SECRET" DATABASE_URL="$HOLE_URL" CONNECT_TIMEOUT_MS=1000
expect "a database that never answers: /healthz answers 503 within the bound" \
    "$(status_of "$(call "$PORT_HOLE" /healthz --max-time 4)")" 503
expect "... and the export 500" \
    "$(status_of "$(call "$PORT_HOLE" "$EXPORT" --max-time 4 -H "Authorization: Bearer $SECRET")")" 500
within 3 hole_empty || die "connections to the black hole stayed open: $(cat "$WORK/hole_open")"
echo "ok: ... leaving no connection to it"

PORT_LEFT=$(free_port)
start_shim left "$PORT_LEFT" CRON_SECRET="$SECRET" DATABASE_URL="$HOLE_URL" CONNECT_TIMEOUT_MS=60000
LEFT_PID=$shim_pid
idle_threads=$(threads_of "$LEFT_PID")
curl -sS -o /dev/null -m 1 -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_LEFT$EXPORT" 2>/dev/null \
    && die "the export answered although its database never does"
within 3 threads_back "$LEFT_PID" "$idle_threads" || die "a thread stayed after its client left: $(threads_of "$LEFT_PID") > $idle_threads"
echo "ok: a client leaving while the shim connects takes its thread along"
within 3 hole_empty || die "its connection to the database stayed open"
echo "ok: ... and its database connection"

# A client leaving while its call runs: the call's backend goes too.
locked() {
    [ "$(sql -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 WHERE c.relname = 'interaction_history' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ]
}
no_shim_backends() { [ "$(shim_backends)" = 0 ]; }
# hold_lock SECONDS: holds the table's lock in the background ($locker).
hold_lock() {
    psql -X -q -d "$DB" -c "SET application_name = 'http_test_locker'" -c "BEGIN" \
        -c "LOCK TABLE interaction_history IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep($1)" -c "COMMIT" \
        >/dev/null 2>&1 &
    locker=$!
    within 5 locked || die "the lock was not taken"
}
within 3 no_shim_backends || die "shim backends before the test: $(shim_backends)"
hold_lock 30
curl -sS -o /dev/null -m 1 -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$PORT_A$EXPORT" 2>/dev/null \
    && die "the export answered while the table was locked"
within 4 no_shim_backends || die "the backend of a call whose client left is still there: $(shim_backends)"
echo "ok: a client leaving mid-call ends the call's backend"
sql -q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'http_test_locker'" >/dev/null
wait "$locker" || true

# SIGTERM: the listener closes at once (new connections refused), idle and
# half-sent connections are closed, the request in flight is answered with
# Connection: close and its connection serves nothing more, and the shim
# exits as soon as that request is done.
PORT_STOP=$(free_port)
start_shim stop "$PORT_STOP" CRON_SECRET="$SECRET" DATABASE_URL="$URL"
STOP_PID=$shim_pid
hold_lock 3
$HOSTILE shutdown "$PORT_STOP" "$SECRET" "$STOP_PID" >"$WORK/shutdown.out"
expect "before SIGTERM, kept-alive connections are served" "$(grep -c ' before: 200$' "$WORK/shutdown.out")" 2
expect "after SIGTERM, a new connection is refused at once" "$(grep '^new connection:' "$WORK/shutdown.out")" "new connection: refused"
expect "an idle kept-alive connection is closed, not served" "$(grep '^idle after:' "$WORK/shutdown.out")" "idle after: closed"
expect "a half-sent request head is cut" "$(grep '^half-sent after:' "$WORK/shutdown.out")" "half-sent after: closed"
expect "the request in flight is answered, with Connection: close" "$(grep '^in flight:' "$WORK/shutdown.out")" "in flight: 200 connection close"
expect "its connection serves nothing more" "$(grep '^kept after:' "$WORK/shutdown.out")" "kept after: closed"
expect "the shim exits once that request is answered, though other connections are open" \
    "$(grep '^exit after the answer:' "$WORK/shutdown.out")" "exit after the answer: within 3 s"
wait "$locker" || true
status=0
wait "$STOP_PID" || status=$?
expect "the shim exited 0" "$status" 0
grep -q 'stopped' "$WORK/stop.log" || die "the shim did not say it stopped"
echo "ok: the shim stopped cleanly"
