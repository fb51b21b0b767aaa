#!/usr/bin/env bash
# The S3 sink against a real S3-compatible server (npm s3rver) on 127.0.0.1:
# upload and list back, keys equal to the local layout, DuckDB reading the
# downloaded objects (plain, gzip and zstd), a wrong bucket, the server down
# (retries, then an error, checkpoint unmoved), the server back (exactly once
# after the retry), a multipart upload, and missing credentials.
# Credentials: only postgresql.conf/ALTER SYSTEM is accepted, no other role
# can read them, and a credentials file is refused unless private to the
# server's OS user and then signs with its profile's keys.
# Every request goes through test/s3/verify-proxy.mjs, which checks its SigV4
# signature with AWS's own signer as real S3 would (s3rver checks none): the
# suite ends by asserting that no request of the extension was rejected.
# Then deadlines and interrupts against a misbehaving server
# (test/s3/misbehaving-server.mjs): a stalled and an endless response fail the
# tenant within the configured limits, and a cancel or statement_timeout ends
# a stalled upload promptly, workers included.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/s3/lib.sh"

DB=interactions_cron_s3
BUCKET=lake
PREFIX=warehouse/
S3_PORT=$(free_port)            # the verifying proxy, which everything talks to
S3_BACKEND_PORT=$(free_port)    # s3rver behind it
DOWNLOADS=$(mktemp -d /tmp/interactions_cron_s3.XXXXXX)
PROXY_STATS="$DOWNLOADS/verify-proxy-stats.json"
s3_pid=
proxy_pid=
bad_pid=

stop_s3() { stop_pid "$proxy_pid"; proxy_pid=; stop_pid "$s3_pid"; s3_pid=; }
stop_bad() { stop_pid "$bad_pid"; bad_pid=; }
trap 'stop_bad; stop_s3; rm -rf "$DOWNLOADS"' EXIT

# start_s3: s3rver, and the verifying proxy in front of it on $S3_PORT.  The
# proxy keeps its counts in $PROXY_STATS across restarts.
start_s3() {
    start_s3rver
    start_proxy
}

acme_error='[t for t in d["tenants"] if t["tenantId"] == "acme"][0].get("error", "")'

ensure_s3rver
ensure_duckdb

# set_credentials ID SECRET [DB]: the credential settings by ALTER SYSTEM (the
# only way they are accepted; empty resets them), once the server has
# reloaded: a new session shows the secret as (set), or empty.
set_credentials() {
    local shown='(set)' statements=()
    if [ -z "$2" ]; then
        shown=
        statements=(-c "ALTER SYSTEM RESET interactions_cron.s3_access_key_id" -c "ALTER SYSTEM RESET interactions_cron.s3_secret_access_key")
    else
        statements=(-c "ALTER SYSTEM SET interactions_cron.s3_access_key_id = '$1'" -c "ALTER SYSTEM SET interactions_cron.s3_secret_access_key = '$2'")
    fi
    # ALTER SYSTEM knows the settings only once the library is loaded.
    psql -X -q -d postgres -c "LOAD 'interactions_cron'" "${statements[@]}" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 100); do
        # A session that has not loaded the library shows the placeholder's raw value.
        case "$(psql -X -At -d "${3:-postgres}" -c "SHOW interactions_cron.s3_secret_access_key" 2>/dev/null)" in
            "$shown" | "${2:-(set)}") return 0 ;;
        esac
        sleep 0.1
    done
    die "the credential settings were not reloaded"
}

# Credentials given as settings are refused unless the library is preloaded
# (checked on the shared test cluster, which does not preload it).
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS interactions_cron_s3_refusal" -c "CREATE DATABASE interactions_cron_s3_refusal"
psql -X -q -d interactions_cron_s3_refusal -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/reference/schema.sql" >/dev/null
set_credentials y x interactions_cron_s3_refusal
error=$(psql -X -At -d interactions_cron_s3_refusal -c "SET interactions_cron.storage = 's3'" -c "SET interactions_cron.s3_bucket = 'b'" \
        -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
set_credentials "" "" interactions_cron_s3_refusal
expect "credential settings without preloading are refused" \
    "$(grep -c 'require interactions_cron in shared_preload_libraries' <<<"$error")" 1
# So is the container authorization token given as a setting: without
# preloading, every role could SHOW it.  (Port 9 on loopback: nothing is
# asked before the refusal.)
psql -X -q -d postgres -c "LOAD 'interactions_cron'" \
    -c "ALTER SYSTEM SET interactions_cron.s3_container_credentials_full_uri = 'http://127.0.0.1:9/credentials'" \
    -c "ALTER SYSTEM SET interactions_cron.s3_container_authorization_token = 'container-token-secret'" \
    -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
    [ "$(psql -X -At -d interactions_cron_s3_refusal -c "SHOW interactions_cron.s3_container_authorization_token" 2>/dev/null)" = \
        container-token-secret ] && break
    sleep 0.1
done
error=$(psql -X -At -d interactions_cron_s3_refusal -c "SET interactions_cron.storage = 's3'" -c "SET interactions_cron.s3_bucket = 'b'" \
        -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
psql -X -q -d postgres -c "LOAD 'interactions_cron'" \
    -c "ALTER SYSTEM RESET interactions_cron.s3_container_credentials_full_uri" \
    -c "ALTER SYSTEM RESET interactions_cron.s3_container_authorization_token" -c "SELECT pg_reload_conf()" >/dev/null
expect "a container authorization token setting without preloading is refused" \
    "$(grep -c 's3_container_authorization_token as a placeholder' <<<"$error")" 1

# This suite's own cluster preloads the library, so the credential settings
# are defined, and masked, in every session.
start_cluster "shared_preload_libraries = 'interactions_cron'"
S3_DATA="$CLUSTER_DIR/s3rver"
# show_rejections: on a failure, what the verifying proxy refused, and why.
show_rejections() {
    [ -f "$PROXY_STATS" ] || return 0
    echo "verifying proxy: $(proxy_stat 's["verified"]') verified, $(proxy_stat 's["rejected"]') rejected; last rejections:" >&2
    proxy_stat '"\n".join(s["rejections"][-5:])' >&2
}
trap 'status=$?; [ "$status" -eq 0 ] || show_rejections; stop_bad; stop_s3; rm -rf "$DOWNLOADS"; stop_cluster' EXIT
start_s3

# The proxy refuses what real S3 refuses: libcurl 7.88's "Expect:" header
# removal, which still signs expect (the bug the client once had), a wrong
# secret, and a body whose SHA-256 is not the one signed.
printf 'hello\n' >"$DOWNLOADS/hello"
hello_sha=$(sha256sum "$DOWNLOADS/hello" | cut -d' ' -f1)
signed_put() {
    curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT \
        --data-binary @"$DOWNLOADS/hello" "$@" "http://127.0.0.1:$S3_PORT/$BUCKET/proxy-check"
}
# (Later libcurls, trixie's 8.14 on, no longer sign the header they remove:
# there the request is a good one and nothing is left to reject.)
put_status=$(signed_put --user S3RVER:S3RVER -H "x-amz-content-sha256: $hello_sha" -H "Expect:" -v 2>"$DOWNLOADS/trace")
expected_rejections=2
if grep -q '^> Authorization: .*SignedHeaders=[^,]*expect' "$DOWNLOADS/trace"; then
    expect "the proxy rejects a signed but unsent Expect header" "$put_status" 403
    expected_rejections=3
else
    expect "this libcurl signs only what it sends: the request without Expect is forwarded" "$put_status" 200
fi
expect "the proxy rejects a wrong secret" \
    "$(signed_put --user S3RVER:wrong -H "x-amz-content-sha256: $hello_sha")" 403
expect "the proxy rejects a body that is not the one signed" \
    "$(signed_put --user S3RVER:S3RVER -H "x-amz-content-sha256: $EMPTY_SHA")" 400
expect "the proxy forwards a correctly signed request" \
    "$(signed_put --user S3RVER:S3RVER -H "x-amz-content-sha256: $hello_sha")" 200
expect "the proxy counted the $expected_rejections rejections" "$(proxy_stat 's["rejected"]')" "$expected_rejections"
s3_get "/proxy-check" >/dev/null
curl -sS --fail -o /dev/null -X DELETE --aws-sigv4 "aws:amz:us-east-1:s3" --user "S3RVER:S3RVER" \
    -H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$S3_PORT/$BUCKET/proxy-check"
rejected_before=$(proxy_stat 's["rejected"]')
operations_before=$(proxy_stat 'json.dumps(s["verifiedByOperation"], sort_keys=True)')

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
for setting in "storage = 's3'" "s3_bucket = '$BUCKET'" "s3_prefix = '$PREFIX'" \
               "s3_endpoint = 'http://127.0.0.1:$S3_PORT'" "s3_path_style = on" \
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

# Credentials are accepted from the configuration files only, and never
# shown, to superusers neither.
error=$(psql -X -q -d postgres -c "ALTER DATABASE $DB SET interactions_cron.s3_secret_access_key = 'S3RVER'" 2>&1 || true)
expect "ALTER DATABASE SET of a credential is refused" \
    "$(grep -c "S3 credentials cannot be set with ALTER DATABASE" <<<"$error")" 1
set_credentials S3RVER S3RVER "$DB"
expect "the secret key is not shown" "$(sql -c "SHOW interactions_cron.s3_secret_access_key")" "(set)"
# No other role reads them: not through SHOW, current_setting, pg_settings,
# pg_file_settings or pg_db_role_setting; a pg_read_all_settings member
# learns only that they are set.
sql -q -c "CREATE ROLE s3_reader LOGIN" -c "CREATE ROLE s3_monitor LOGIN IN ROLE pg_read_all_settings"
as_reader() { psql -X -At -U "$1" -d "$DB" -c "$2" 2>&1 || true; }
expect "SHOW is refused to another role" \
    "$(as_reader s3_reader "SHOW interactions_cron.s3_secret_access_key" | grep -c -E 'must be superuser or have privileges of pg_read_all_settings|permission denied to examine')" 1
expect "current_setting is refused to another role" \
    "$(as_reader s3_reader "SELECT current_setting('interactions_cron.s3_access_key_id')" | grep -c -E 'must be superuser or have privileges of pg_read_all_settings|permission denied to examine')" 1
for role in s3_reader s3_monitor; do
    expect "pg_settings does not list them to $role" \
        "$(as_reader $role "SELECT count(*) FROM pg_settings WHERE name IN ('interactions_cron.s3_access_key_id', 'interactions_cron.s3_secret_access_key', 'interactions_cron.s3_container_authorization_token')")" 0
    expect "pg_file_settings is refused to $role" \
        "$(as_reader $role "SELECT count(*) FROM pg_file_settings" | grep -c 'permission denied')" 1
    expect "pg_db_role_setting holds no credential for $role to read" \
        "$(as_reader $role "SELECT count(*) FROM pg_db_role_setting WHERE setconfig::text LIKE '%S3RVER%'")" 0
done
expect "a pg_read_all_settings member sees only (set)" \
    "$(as_reader s3_monitor "SELECT current_setting('interactions_cron.s3_secret_access_key')")" "(set)"

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

# gzip and zstd objects read back too, each under a prefix of its own.
for codec in gzip:gz:json.gz zstd:zst:json.zst; do
    IFS=: read -r compression prefix extension <<<"$codec"
    sql -q -c "TRUNCATE interactions_cron.export_checkpoints"
    psql -X -q -d postgres -c "ALTER DATABASE $DB SET interactions_cron.s3_prefix = '$prefix/'" \
        -c "ALTER DATABASE $DB SET interactions_cron.compression = '$compression'"
    expect "the $compression export is ok" "$(json_get 'd["ok"]' <<<"$(export_run "")")" True
    download_all "$DOWNLOADS/all"
    findings=$(node "$REPO_ROOT/test/duckdb/readback.mjs" "$DOWNLOADS/all/$prefix" "$DOWNLOADS/$prefix.csv" "$extension")
    expect "DuckDB reads every $compression row once" "$(json_get 'd["rows"] + "/" + d["distinct_ids"]' <<<"$findings")" "6000/6000"
done
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

# A placed object never replaces another (If-None-Match: *, on the PUT and on
# the multipart completion; the proxy answers 412 as S3 does, since s3rver
# would write): a batch past a confirmed one whose key another object took
# meanwhile (planted here, holding a row of no table) fails the tenant, the
# object stays as it was, no intent names it, and the refused multipart
# upload is aborted.
sql -q -c "INSERT INTO tenants (id, name) VALUES ('twice', 'Twice')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('twice', '2026-03-30 05:00:00+00')"
expect "a single-object tenant exports" "$(json_get 'd["totalExported"]' <<<"$(export_run "tenant_id => 'twice'")")" 1
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('twice', '2026-03-30 06:00:00+00')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at, metadata)
        SELECT 'whale', timestamptz '2026-03-30 02:00:00+00' + g * interval '10 ms', jsonb_build_object('pad', repeat('w', 300))
        FROM generate_series(1, 20000) g"
printf '{"id": -1}\n' >"$DOWNLOADS/foreign"
foreign_sha=$(sha256sum "$DOWNLOADS/foreign" | cut -d' ' -f1)
# plant_at_next_key TENANT: puts the foreign object at the key of the
# tenant's next batch (in batches of 20,000), and prints that key.
plant_at_next_key() {
    local dry key
    dry=$(export_run "tenant_id => '$1', batch_size => 20000, dry_run => true")
    key="$PREFIX$(json_get 'd["tenants"][0]["files"][0]' <<<"$dry")"
    curl -sS --fail -o /dev/null -X PUT --data-binary @"$DOWNLOADS/foreign" --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "S3RVER:S3RVER" -H "x-amz-content-sha256: $foreign_sha" \
        "http://127.0.0.1:$S3_PORT/$BUCKET/$(url_path "$key")"
    echo "$key"
}
twice_key=$(plant_at_next_key twice)
whale_key=$(plant_at_next_key whale)
refused_before=$(proxy_stat 's.get("preconditionFailed", 0)')
aborts_before=$(proxy_stat 's["verifiedByOperation"].get("DELETE multipart abort", 0)')
result=$(export_run "tenant_id => 'twice'")
expect "a batch whose key another object took fails the tenant" \
    "$(json_get 'd["tenants"][0].get("error", "")' <<<"$result" | grep -c 'already exists in the lake')" 1
result=$(sql -c "SET interactions_cron.s3_multipart_threshold = '5MB'" -c "SELECT interactions_cron.export_interactions(tenant_id => 'whale', batch_size => 20000)" | tail -1)
expect "so does a multipart batch" \
    "$(json_get 'd["tenants"][0].get("error", "")' <<<"$result" | grep -c 'already exists in the lake')" 1
expect "the store refused both create-only writes" "$(( $(proxy_stat 's.get("preconditionFailed", 0)') - refused_before ))" 2
expect "both objects there are untouched" \
    "$(s3_get "/$(url_path "$twice_key")")$(s3_get "/$(url_path "$whale_key")")" '{"id": -1}{"id": -1}'
expect "no intent names them" "$(sql -c "SELECT count(*) FROM interactions_cron.export_intents WHERE tenant_id IN ('twice', 'whale') AND files <> '{}'")" 0
expect "the refused multipart upload is aborted" \
    "$(( $(proxy_stat 's["verifiedByOperation"].get("DELETE multipart abort", 0)') - aborts_before ))" 1

# A replay (reset_checkpoint) into keys still in the bucket is refused before
# its intent names them, and before it writes anything: the undo of a batch
# that fails before placing removes what its intent names, which must never
# be an object it did not place.  Then the checkpoints are moved past the rows.
sql -q -c "SELECT interactions_cron.reset_checkpoint('twice')"
refused_before=$(proxy_stat 's.get("preconditionFailed", 0)')
result=$(export_run "tenant_id => 'twice'")
expect "a replay into an existing key fails the tenant" \
    "$(json_get 'd["tenants"][0].get("error", "")' <<<"$result" | grep -c 'already exists in the lake')" 1
expect "having written nothing" "$(( $(proxy_stat 's.get("preconditionFailed", 0)') - refused_before ))" 0
sql -q -c "SELECT interactions_cron.reset_checkpoint('twice', '2026-03-31', force => true)" \
    -c "SELECT interactions_cron.reset_checkpoint('whale', '2026-03-31', force => true)"
for key in "$twice_key" "$whale_key"; do
    curl -sS --fail -o /dev/null -X DELETE --aws-sigv4 "aws:amz:us-east-1:s3" --user "S3RVER:S3RVER" \
        -H "x-amz-content-sha256: $EMPTY_SHA" "http://127.0.0.1:$S3_PORT/$BUCKET/$(url_path "$key")"
done

# A database behind its own lake (an old dump restored into the same
# cluster, played by putting back the checkpoint of two batches earlier):
# its first batch's key is taken (412) by an object holding rows the table
# holds past the checkpoint, so the tenant's objects past it are judged,
# removed, and written again in the same call, in batches of another size.
behind_keys() {
    local prefix
    prefix=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="-_.~"))' "${PREFIX}exports/behind/")
    s3_get "?list-type=2&prefix=$prefix" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' | sort
}
sql -q -c "INSERT INTO tenants (id, name) VALUES ('behind', 'Behind')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at)
        SELECT 'behind', timestamptz '2026-03-30 06:00:00+00' + g * interval '1 minute' FROM generate_series(1, 12) g"
export_run "tenant_id => 'behind', batch_size => 4" >/dev/null
sql -q -c "CREATE TABLE saved_checkpoint AS SELECT * FROM interactions_cron.export_checkpoints WHERE tenant_id = 'behind'" >/dev/null
export_run "tenant_id => 'behind', batch_size => 4" >/dev/null
export_run "tenant_id => 'behind', batch_size => 4" >/dev/null
expect "the tenant has three objects of four rows" "$(behind_keys | wc -l)" 3
sql -q -c "UPDATE interactions_cron.export_checkpoints c
           SET last_created_at = s.last_created_at, last_id = s.last_id, rows_exported = s.rows_exported,
               files_written = s.files_written, last_file = s.last_file
           FROM saved_checkpoint s WHERE c.tenant_id = 'behind'" -c "DROP TABLE saved_checkpoint" >/dev/null
refused_before=$(proxy_stat 's.get("preconditionFailed", 0)')
result=$(export_run "tenant_id => 'behind', batch_size => 5")
expect "the tenant behind its lake exports on in the same call" \
    "$(json_get 'd["tenants"][0].get("error", "") + str(d["tenants"][0]["exported"])' <<<"$result")" 5
expect "its first key was taken" "$(( $(proxy_stat 's.get("preconditionFailed", 0)') - refused_before ))" 1
expect "the next call exports the rest" "$(json_get 'd["totalExported"]' <<<"$(export_run "tenant_id => 'behind', batch_size => 5")")" 3
rm -rf "$DOWNLOADS/behind"; mkdir -p "$DOWNLOADS/behind"
while read -r key; do s3_get "/$(url_path "$key")"; done < <(behind_keys) >"$DOWNLOADS/behind/lines"
expect "each of its rows is in one object, once" \
    "$(wc -l <"$DOWNLOADS/behind/lines") $(grep -o '^{"id":[0-9]*' "$DOWNLOADS/behind/lines" | sort -u | wc -l)" "12 12"

# Missing credentials fail fast, before any tenant (with EC2 instance
# metadata, the chain's last source, turned off: tests reach only 127.0.0.1).
error=$(psql -X -At -d "$DB" -c "SET interactions_cron.s3_access_key_id = ''" -c "SET interactions_cron.s3_secret_access_key = ''" \
        -c "SET interactions_cron.s3_ec2_metadata_disabled = on" \
        -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "missing credentials fail the run with a clear message" \
    "$(grep -c 'no S3 credentials are configured' <<<"$error")" 1
error=$(psql -X -At -d "$DB" -c "SET interactions_cron.s3_bucket = ''" -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "a missing bucket fails the run with a clear message" \
    "$(grep -c "interactions_cron.s3_bucket is not set" <<<"$error")" 1

# Every request of the extension carried a signature that AWS's signer
# accepts: uploads, multipart starts, parts and completions, and deletes.
echo "verifying proxy: $(proxy_stat 'json.dumps(s["verifiedByOperation"], sort_keys=True)')"
expect "the proxy rejected no request of the extension" \
    "$(proxy_stat 's["rejected"]')" "$rejected_before"
for operation in "PUT object" "POST multipart start" "PUT part" "POST multipart completion" "DELETE object"; do
    verified=$(python3 -c 'import json, sys; now = json.load(open(sys.argv[1]))["verifiedByOperation"]; before = json.loads(sys.argv[2]); print(now.get(sys.argv[3], 0) - before.get(sys.argv[3], 0))' \
               "$PROXY_STATS" "$operations_before" "$operation")
    [ "$verified" -gt 0 ] || die "no '$operation' request of the extension was verified"
    echo "ok: $verified '$operation' requests of the extension verified"
done

# --- The credentials in an AWS shared credentials file instead of settings:
# refused unless private to the server's OS user; once it is, the profile's
# keys sign the uploads (the proxy checks them: a profile with a wrong secret
# fails).
CREDENTIALS_FILE="$CLUSTER_DIR/aws-credentials"
cat >"$CREDENTIALS_FILE" <<'CREDENTIALS'
# a comment
[default]
aws_access_key_id = S3RVER
aws_secret_access_key = not-the-secret

[lake]
region = us-east-1
aws_access_key_id = S3RVER
aws_secret_access_key = S3RVER
CREDENTIALS
[ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER" "$CREDENTIALS_FILE"
chmod 0644 "$CREDENTIALS_FILE"
set_credentials "" "" "$DB"
psql -X -q -d postgres -c "LOAD 'interactions_cron'" -c "ALTER SYSTEM SET interactions_cron.s3_credentials_file = '$CREDENTIALS_FILE'" \
    -c "ALTER SYSTEM SET interactions_cron.s3_credentials_profile = 'lake'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
    [ "$(sql -c "SHOW interactions_cron.s3_credentials_profile")" = lake ] && break
    sleep 0.1
done
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('acme', now() - interval '20 seconds')"
error=$(sql -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "a credentials file others can read is refused" "$(grep -c 'has group or world access' <<<"$error")" 1
expect "with a hint" "$(grep -c "HINT:  chmod 0600" <<<"$error")" 1
if [ "$(id -u)" -eq 0 ]; then
    # Readable by the server, but another user's: whoever can write it chooses the keys.
    chown root "$CREDENTIALS_FILE"
    error=$(sql -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
    expect "a credentials file of another OS user is refused" \
        "$(grep -c "is not owned by the server's OS user" <<<"$error")" 1
    chown "$PG_OS_USER" "$CREDENTIALS_FILE"
fi
chmod 0600 "$CREDENTIALS_FILE"
verified_before=$(proxy_stat 's["verified"]')
rejected_before=$(proxy_stat 's["rejected"]')
result=$(export_run "")
expect "the export signed with the file's keys is ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "it exported the waiting row" "$(json_get 'd["totalExported"]' <<<"$result")" 1
expect "the proxy verified its signatures" "$(( $(proxy_stat 's["verified"]') > verified_before ))" 1
expect "and rejected none" "$(proxy_stat 's["rejected"]')" "$rejected_before"
sql -q -c "INSERT INTO interaction_history (tenant_id, created_at) VALUES ('acme', now() - interval '10 seconds')"
result=$(sql -c "SET interactions_cron.s3_credentials_profile = 'default'" -c "SELECT interactions_cron.export_interactions()" | tail -1)
expect "the profile's wrong secret is refused by the store" "$(json_get "$acme_error" <<<"$result" | grep -c 'HTTP 403')" 1
error=$(sql -c "SET interactions_cron.s3_credentials_profile = 'nope'" -c "SELECT interactions_cron.export_interactions()" 2>&1 || true)
expect "a missing profile fails the run" "$(grep -c 'has no profile \[nope\]' <<<"$error")" 1
expect "no secret of the file is in the server log" "$(grep -c 'not-the-secret' "$CLUSTER_DIR/server.log" || true)" 0

# --- Deadlines and interrupts, against a misbehaving server on 127.0.0.1.
# Each case has a tenant of its own, since a failed batch leaves an intent
# whose cleanup goes to the endpoint it was recorded with.
BAD_PORT=$(free_port)
BAD_LOG="$DOWNLOADS/misbehaving.log"
now_ms() { date +%s%3N; }
# start_bad MODE: a server that stalls, or streams an endless 200 response.
start_bad() {
    stop_bad
    : >"$BAD_LOG"
    node "$REPO_ROOT/test/s3/misbehaving-server.mjs" --port "$BAD_PORT" --mode "$1" --log "$BAD_LOG" \
        --keys "$DOWNLOADS/listed-keys" --lifetime 600 >>"$CLUSTER_DIR/misbehaving.log" 2>&1 &
    bad_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening' "$BAD_LOG" 2>/dev/null && return 0
        sleep 0.1
    done
    die "the misbehaving server did not start"
}
# requests_seen: how many requests the misbehaving server has read.
requests_seen() { grep -c '^request' "$BAD_LOG" || true; }
# wait_for_request COUNT: until the server has read more than COUNT requests.
wait_for_request() {
    for _ in $(seq 200); do
        [ "$(requests_seen)" -gt "$1" ] && return 0
        sleep 0.1
    done
    die "no request reached the misbehaving server"
}
# workers_left: export workers still running, whatever their state.
workers_left() {
    psql -X -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'interactions_cron export worker'"
}
# expect_workers_gone WHAT: the export workers end within 10 s, and with
# them every connection to the misbehaving server.
expect_workers_gone() {
    local left=1 open=1
    for _ in $(seq 100); do
        left=$(workers_left)
        open=$(grep '^closed' "$BAD_LOG" | tail -1 | cut -d' ' -f2)
        [ "$left" = 0 ] && [ "${open:-1}" = 0 ] && break
        sleep 0.1
    done
    expect "$1: no export worker is left" "$left" 0
    expect "$1: no connection to the server is left open" "${open:-1}" 0
}
# first_tenant_error: the first tenant's error in a call's result on stdin,
# or the whole output when the call itself failed (no JSON).
first_tenant_error() {
    python3 -c 'import json, sys
text = sys.stdin.read()
try:
    print(json.loads(text)["tenants"][0].get("error", ""))
except ValueError:
    print(text.strip())'
}
bad_sql() {
    sql -c "SET interactions_cron.s3_endpoint = 'http://127.0.0.1:$BAD_PORT'" "$@"
}
# Their checkpoints end a batch this history confirmed, so that each batch
# goes straight to its upload (a first batch would look its key up first).
sql -q -c "INSERT INTO tenants (id, name) VALUES ('stalled', 'S'), ('endless', 'E'), ('cancelled', 'C'), ('timed-out', 'T')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at)
        SELECT t, now() - interval '1 minute' FROM unnest(ARRAY['stalled', 'endless', 'cancelled', 'timed-out']) t" \
    -c "INSERT INTO interactions_cron.export_checkpoints (tenant_id, last_created_at, last_id, lake_epoch)
        SELECT t, now() - interval '1 hour', '0',
               (SELECT s.system_identifier || '/' || c.timeline_id FROM pg_control_system() s, pg_control_checkpoint() c)
        FROM unnest(ARRAY['stalled', 'endless', 'cancelled', 'timed-out']) t"

# export_failing_fast MODE TENANT SETTING: with the misbehaving server in
# MODE, exports TENANT under statement_timeout = 60s and SETTING; sets
# $elapsed (ms) and $tenant_error.
export_failing_fast() {
    local result started
    start_bad "$1"
    started=$(now_ms)
    result=$({ bad_sql -c "SET statement_timeout = '60s'" -c "$3" \
               -c "SELECT interactions_cron.export_interactions(tenant_id => '$2')" 2>&1 || true; } | tail -1)
    elapsed=$(( $(now_ms) - started ))
    tenant_error=$(first_tenant_error <<<"$result")
    echo "$1 server: tenant failed after ${elapsed} ms: $tenant_error"
}

# A server that reads the request and never answers: the low-speed limit
# fails each attempt (it used to take 60 s each), so the tenant fails with a
# clear error long before the statement_timeout.
export_failing_fast stall stalled "SET interactions_cron.s3_low_speed_time = '1s'"
expect "a stalled server fails the tenant once the transfer is too slow" \
    "$(grep -c 'failed after 4 attempts: Operation too slow' <<<"$tenant_error")" 1
expect "the stalled upload took well under the statement_timeout (< 40 s)" "$(( elapsed < 40000 ))" 1
expect "its checkpoint did not move" \
    "$(sql -c "SELECT rows_exported FROM interactions_cron.export_checkpoints WHERE tenant_id = 'stalled'")" 0

# A server that answers 200 at once and streams a body that never ends, fast
# enough for any low-speed limit: the per-request deadline fails each
# attempt (it used to run until the statement_timeout).
export_failing_fast endless endless "SET interactions_cron.s3_request_timeout = '1s'"
expect "an endless response fails the tenant at the request deadline" \
    "$(grep -c 'failed after 4 attempts: Operation timed out after' <<<"$tenant_error")" 1
expect "the endless response took well under the statement_timeout (< 40 s)" "$(( elapsed < 40000 ))" 1

# A cancelled call with an upload stalled at the default limits: the call and
# its workers end promptly, and the worker drops the connection.
start_bad stall
PGAPPNAME=s3_cancel_test bad_sql -c "SELECT interactions_cron.export_interactions(tenant_id => 'cancelled')" \
    >"$DOWNLOADS/cancel.out" 2>&1 &
caller=$!
wait_for_request 0
sleep 0.5
started=$(now_ms)
sql -q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 's3_cancel_test' AND backend_type = 'client backend'" >/dev/null
wait "$caller" || true
elapsed=$(( $(now_ms) - started ))
echo "cancel: the call ended ${elapsed} ms after pg_cancel_backend: $(tail -1 "$DOWNLOADS/cancel.out")"
expect "a cancel ends the call" "$(grep -c 'canceling statement due to user request' "$DOWNLOADS/cancel.out")" 1
expect "a cancel ends a stalled upload promptly (< 10 s)" "$(( elapsed < 10000 ))" 1
expect_workers_gone "after a cancel"

# statement_timeout ends a stalled upload just as promptly.
seen=$(requests_seen)
started=$(now_ms)
error=$(bad_sql -c "SET statement_timeout = '2s'" \
        -c "SELECT interactions_cron.export_interactions(tenant_id => 'timed-out')" 2>&1 || true)
elapsed=$(( $(now_ms) - started ))
echo "statement_timeout 2 s: the call ended after ${elapsed} ms: $error"
expect "the stalled upload was under way" "$(( $(requests_seen) > seen ))" 1
expect "statement_timeout ends the call" "$(grep -c 'canceling statement due to statement timeout' <<<"$error")" 1
expect "statement_timeout ends a stalled upload promptly (< 10 s)" "$(( elapsed < 10000 ))" 1
expect_workers_gone "after a statement_timeout"

# --- The lake sweep's listing (after a failover: a checkpoint recorded in
# another history), answered by the misbehaving server.  Tenant "wide" has
# rows 900001 and 900002; its checkpoint is at the first, so a file named
# after the second was placed by the lost history and must be deleted.
KEYS_FILE="$DOWNLOADS/listed-keys"
LAKE_DIR="${PREFIX}exports/wide/interaction_history/year=2026/month=03/day=30"
LOST_KEY="$LAKE_DIR/batch-2026-03-30T12-00-00-000000Z-900002.json"
sql -q -c "INSERT INTO tenants (id, name) VALUES ('wide', 'W')" \
    -c "INSERT INTO interaction_history (id, tenant_id, created_at) VALUES
        (900001, 'wide', '2026-03-30 10:00:00+00'), (900002, 'wide', '2026-03-30 12:00:00+00')"
# after_failover: puts wide's checkpoint back at its first row, recorded in another history.
after_failover() {
    sql -q -c "INSERT INTO interactions_cron.export_checkpoints (tenant_id) VALUES ('wide') ON CONFLICT DO NOTHING" \
        -c "UPDATE interactions_cron.export_checkpoints SET last_created_at = '2026-03-30 10:00:00+00',
            last_id = '900001', lake_epoch = 'another/1', status = 'ok' WHERE tenant_id = 'wide'"
}
# sweep_wide MODE: lists wide's files from the server in MODE, then exports
# wide (bounded by a statement_timeout); sets $tenant_error.
sweep_wide() {
    start_bad "$1"
    after_failover
    tenant_error=$({ bad_sql -c "SET statement_timeout = '60s'" \
                     -c "SELECT interactions_cron.export_interactions(tenant_id => 'wide')" 2>&1 || true; } |
                   tail -1 | first_tenant_error)
    echo "$1 listing: ${tenant_error:-no error}"
}
deletes_of() { grep -c "^request DELETE /$BUCKET/$(url_path "$1") " "$BAD_LOG" || true; }

# A page of 1,000 keys (about 300 kB): the lost file, listed last, is seen,
# read, and deleted as it holds a row past the checkpoint (the listing used
# to be cut at 64 kB); the others hold rows the table lacks, and stay.
{
    for i in $(seq 1 999); do echo "$LAKE_DIR/batch-2026-03-30T11-00-00-000000Z-$((100000 + i)).json"; done
    echo "$LOST_KEY"
} >"$KEYS_FILE"
expect "the page of 1,000 keys is larger than 64 kB" "$(( $(wc -c <"$KEYS_FILE") > 65536 ))" 1
sweep_wide list
expect "the tenant's export after the sweep is ok" "$tenant_error" ""
expect "the lost file listed last is deleted" "$(deletes_of "$LOST_KEY")" 1
expect "the files of rows the table lacks are kept" "$(grep -c '^request DELETE' "$BAD_LOG")" 1

# Keys outside the tenant's prefix, with '.' or '..' segments, or shorter
# than the prefix, are ignored with a warning: nothing else is deleted.
printf '%s\n' "$LAKE_DIR/../../../../../../victim-bucket/backups/batch-2026-03-30T12-00-00-000000Z-900002.json" \
    "$LAKE_DIR/./batch-2026-03-30T12-00-00-000000Z-900002.json" \
    "${PREFIX}exports/other/interaction_history/year=2026/month=03/day=30/batch-2026-03-30T12-00-00-000000Z-900002.json" \
    "w" "$LOST_KEY" >"$KEYS_FILE"
warnings_before=$(grep -c 'ignored the key' "$CLUSTER_DIR/server.log" || true)
sweep_wide list
expect "with keys outside the prefix, the export is ok" "$tenant_error" ""
expect "only the tenant's own lost file is deleted" "$(grep '^request DELETE' "$BAD_LOG" | sed 's/ HTTP.*//')" \
    "request DELETE /$BUCKET/$(url_path "$LOST_KEY")"
expect "each key outside the prefix is warned about" \
    "$(( $(grep -c 'ignored the key' "$CLUSTER_DIR/server.log") - warnings_before ))" 4

# A store that never ends a listing (truncated, the same continuation token
# every time) fails the tenant at once instead of holding it for ever.
sweep_wide list-endless
expect "a listing that does not end fails the tenant" \
    "$(grep -c 'hands back the continuation token it was asked with' <<<"$tenant_error")" 1
expect "after two pages" "$(grep -c '^request GET' "$BAD_LOG")" 2
expect_workers_gone "after a listing that does not end"
stop_bad
