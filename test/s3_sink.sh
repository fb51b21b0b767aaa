#!/usr/bin/env bash
# The S3 sink against a real S3-compatible server (npm s3rver) on 127.0.0.1:
# upload and list back, keys equal to the local layout, DuckDB reading the
# downloaded objects (plain and gzip), a wrong bucket, the server down
# (retries, then an error, checkpoint unmoved), the server back (exactly once
# after the retry), a multipart upload, and missing credentials.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

DB=interactions_cron_s3
BUCKET=lake
PREFIX=warehouse/
S3_PORT=$(free_port)
DOWNLOADS=$(mktemp -d /tmp/interactions_cron_s3.XXXXXX)
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3_pid=

stop_s3() {
    if [ -n "$s3_pid" ]; then
        kill "$s3_pid" 2>/dev/null || true
        wait "$s3_pid" 2>/dev/null || true
    fi
    s3_pid=
}
trap 'stop_s3; rm -rf "$DOWNLOADS"' EXIT

start_s3() {
    mkdir -p "$S3_DATA"
    "$REPO_ROOT/test/s3/node_modules/.bin/s3rver" -d "$S3_DATA" -a 127.0.0.1 -p "$S3_PORT" \
        --configure-bucket "$BUCKET" >>"$CLUSTER_DIR/s3rver.log" 2>&1 &
    s3_pid=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && return 0
        sleep 0.1
    done
    die "s3rver did not start"
}

ensure_s3rver() {
    [ -x "$REPO_ROOT/test/s3/node_modules/.bin/s3rver" ] && return 0
    (cd "$REPO_ROOT/test/s3" && npm ci --no-audit --no-fund --loglevel=error)
}

# s3_get PATH_AND_QUERY: a signed GET against the test server.
s3_get() {
    curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user "S3RVER:S3RVER" \
        -H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$S3_PORT/$BUCKET$1"
}
# list_keys: every key of the bucket, one per line, sorted.
list_keys() { s3_get "?list-type=2&max-keys=1000" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' | sort; }
# url_path KEY: the key percent-encoded as a URL path.
url_path() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/-_.~"))' "$1"; }
# download_all DIR: every object into DIR under its key.
download_all() {
    local dir=$1 key
    rm -rf "$dir"; mkdir -p "$dir"
    while read -r key; do
        mkdir -p "$dir/$(dirname "$key")"
        s3_get "/$(url_path "$key")" >"$dir/$key"
    done < <(list_keys)
}
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
expect() {
    local what=$1 actual=$2 expected=$3
    [ "$actual" = "$expected" ] || die "$what: expected '$expected', got '$actual'"
    echo "ok: $what"
}
export_run() { sql -c "SELECT interactions_cron.export_interactions($1)"; }
# json_get EXPRESSION: evaluates a Python expression over the JSON document d on stdin.
json_get() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
acme_error='[t for t in d["tenants"] if t["tenantId"] == "acme"][0].get("error", "")'

ensure_s3rver
ensure_duckdb

# Credentials given as settings are refused unless the library is preloaded
# (checked on the shared test cluster, which does not preload it).
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS interactions_cron_s3_refusal" -c "CREATE DATABASE interactions_cron_s3_refusal"
psql -X -q -d interactions_cron_s3_refusal -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/reference/schema.sql" >/dev/null
error=$(psql -X -At -d interactions_cron_s3_refusal -c "SET interactions_cron.storage = 's3'" -c "SET interactions_cron.s3_bucket = 'b'" \
        -c "SET interactions_cron.s3_secret_access_key = 'x'" -c "SET interactions_cron.s3_access_key_id = 'y'" \
        -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "credential settings without preloading are refused" \
    "$(grep -c 'require interactions_cron in shared_preload_libraries' <<<"$error")" 1

# This suite's own cluster preloads the library, so the credential settings
# are defined, and masked, in every session.
start_cluster "shared_preload_libraries = 'interactions_cron'"
S3_DATA="$CLUSTER_DIR/s3rver"
trap 'stop_s3; rm -rf "$DOWNLOADS"; stop_cluster' EXIT
start_s3

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
for setting in "storage = 's3'" "s3_bucket = '$BUCKET'" "s3_prefix = '$PREFIX'" \
               "s3_endpoint = 'http://127.0.0.1:$S3_PORT'" "s3_path_style = on" \
               "s3_access_key_id = 'S3RVER'" "s3_secret_access_key = 'S3RVER'" \
               "export_dir = '$CLUSTER_DIR/s3_spool'"; do
    psql -X -q -d postgres -c "ALTER DATABASE $DB SET interactions_cron.$setting"
done
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q <<'SQL'
INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('a/b c%', 'Awkward id');
INSERT INTO interaction_history (tenant_id, created_at, channel, metadata)
SELECT t, timestamptz '2026-03-29 22:00:00+00' + g * interval '3 seconds', E'email "x"\n',
       jsonb_build_object('g', g)
FROM unnest(ARRAY['acme', 'a/b c%']) t, generate_series(1, 3000) g;
SQL

# Credentials are never shown, to superusers neither.
expect "the secret key is not shown" "$(sql -c "SHOW interactions_cron.s3_secret_access_key")" "(set)"

# Upload and list back: the keys are the prefix plus the local layout.
planned=$(export_run "dry_run => true" | python3 -c 'import json,sys; print("\n".join(sorted(f for t in json.load(sys.stdin)["tenants"] for f in t["files"])))')
result=$(export_run "")
expect "the export is ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "it reports where the objects went" "$(json_get 'd["location"]' <<<"$result")" "s3://$BUCKET/$PREFIX"
expect "the keys are the prefix plus the local layout" "$(list_keys)" "$(sed "s|^|$PREFIX|" <<<"$planned")"
expect "no spool file is left" "$(find "$CLUSTER_DIR/s3_spool" -type f | wc -l)" 0

# DuckDB reads the downloaded objects: every row once, in the right partition.
download_all "$DOWNLOADS/plain"
findings=$(node "$REPO_ROOT/test/duckdb/readback.mjs" "$DOWNLOADS/plain/$PREFIX" "$DOWNLOADS/plain.csv" json)
echo "duckdb: $findings"
expect "DuckDB reads every row once" "$(json_get 'd["rows"] + "/" + d["distinct_ids"]' <<<"$findings")" "6000/6000"

# gzip objects read back too.
sql -q -c "TRUNCATE interactions_cron.export_checkpoints"
psql -X -q -d postgres -c "ALTER DATABASE $DB SET interactions_cron.s3_prefix = 'gz/'" \
    -c "ALTER DATABASE $DB SET interactions_cron.compression = 'gzip'"
expect "the gzip export is ok" "$(json_get 'd["ok"]' <<<"$(export_run "")")" True
download_all "$DOWNLOADS/all"
findings=$(node "$REPO_ROOT/test/duckdb/readback.mjs" "$DOWNLOADS/all/gz" "$DOWNLOADS/gz.csv" json.gz)
expect "DuckDB reads every gzip row once" "$(json_get 'd["rows"] + "/" + d["distinct_ids"]' <<<"$findings")" "6000/6000"
psql -X -q -d postgres -c "ALTER DATABASE $DB RESET interactions_cron.compression" \
    -c "ALTER DATABASE $DB SET interactions_cron.s3_prefix = '$PREFIX'"

# A wrong bucket: each tenant fails with the store's code, checkpoints stay.
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('acme', now() - interval '1 minute')"
result=$(sql -c "SET interactions_cron.s3_bucket = 'no-such-bucket'" -c "SELECT interactions_cron.export_interactions()" | tail -1)
expect "a wrong bucket fails the tenant with NoSuchBucket" \
    "$(json_get "$acme_error" <<<"$result" | grep -c 'HTTP 404 NoSuchBucket')" 1
expect "its checkpoint is failed and unmoved" \
    "$(sql -c "SELECT status || ' ' || rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 'acme'")" "failed 3000"

# The server down: retries, then an error; checkpoint unmoved.
stop_s3
result=$(export_run "")
expect "the server down fails the tenant after retries" \
    "$(json_get "$acme_error" <<<"$result" | grep -c 'failed after 4 attempts')" 1
expect "its checkpoint is still unmoved" \
    "$(sql -c "SELECT rows_exported || ' ' || attempts FROM interactions_cron.export_checkpoints WHERE tenant_id = 'acme'")" "3000 2"

# The server back: the retry uploads the row, exactly once.
start_s3
result=$(export_run "")
expect "the retry exports the waiting row" "$(json_get 'd["totalExported"]' <<<"$result")" 1
download_all "$DOWNLOADS/after"
expect "every row is in exactly one object" \
    "$(duplicated_ids_and_lines "$DOWNLOADS/after/$PREFIX")" \
    "0 6001"

# A failure after the upload but before the checkpoint moved: the batch's
# object is deleted again, and the retry uploads the same key, so no row is
# in two objects.
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('acme', now() - interval '30 seconds')"
keys_before=$(list_keys | wc -l)
result=$(sql -c "SET interactions_cron.debug_fault = 'error_after_place'" -c "SELECT interactions_cron.export_interactions()" | tail -1)
expect "the injected failure comes after the upload" "$(json_get "$acme_error" <<<"$result" | grep -c 'injected fault error_after_place')" 1
expect "the retry exports the row again" "$(json_get 'd["totalExported"]' <<<"$(export_run "")")" 1
expect "under the same key: one new object, not two" "$(( $(list_keys | wc -l) - keys_before ))" 1
download_all "$DOWNLOADS/retried"
expect "still every row in exactly one object" \
    "$(duplicated_ids_and_lines "$DOWNLOADS/retried/$PREFIX" | cut -d' ' -f1)" 0

# A batch larger than the multipart threshold (5 MB) goes up in parts.
sql -q -c "INSERT INTO tenants (id, name) VALUES ('whale', 'Whale')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at, metadata)
        SELECT 'whale', timestamptz '2026-03-30 01:00:00+00' + g * interval '10 ms', jsonb_build_object('pad', repeat('w', 300))
        FROM generate_series(1, 20000) g"
result=$(sql -c "SET interactions_cron.s3_multipart_threshold = '5MB'" -c "SELECT interactions_cron.export_interactions(tenant_id => 'whale', batch_size => 20000)" | tail -1)
key="$PREFIX$(json_get 'd["tenants"][0]["filePath"]' <<<"$result")"
etag=$(curl -sS -D - -o "$DOWNLOADS/whale.json" --aws-sigv4 "aws:amz:us-east-1:s3" --user "S3RVER:S3RVER" \
       -H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$S3_PORT/$BUCKET/$(url_path "$key")" | grep -i '^etag:' | tr -d '\r')
echo "multipart object: $(wc -c <"$DOWNLOADS/whale.json") bytes, $etag"
expect "the object went up in 2 parts" \
    "$(grep -c 'exports/whale/.*?partNumber=[0-9]*&uploadId=[0-9a-f]* 200 ' "$CLUSTER_DIR/s3rver.log")" 2
expect "it holds every row" "$(wc -l <"$DOWNLOADS/whale.json")" 20000

# Missing credentials fail fast, before any tenant.
error=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY psql -X -At -d "$DB" -c "SET interactions_cron.s3_access_key_id = ''" \
        -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "missing credentials fail the run with a clear message" \
    "$(grep -c 'no S3 credentials are configured' <<<"$error")" 1
error=$(psql -X -At -d "$DB" -c "SET interactions_cron.s3_bucket = ''" -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "a missing bucket fails the run with a clear message" \
    "$(grep -c "interactions_cron.s3_bucket is not set" <<<"$error")" 1
