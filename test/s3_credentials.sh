#!/usr/bin/env bash
# S3 as production runs it (issue 21), all on 127.0.0.1: a role's temporary
# credentials from AWS's default chain, handed out by fakes of STS, the
# container credentials endpoint and IMDSv2 (test/s3/credential-fakes.mjs)
# with a short expiry, every S3 request checked by the verifying proxy
# (test/s3/verify-proxy.mjs), which accepts those credentials only with
# their session token and only while valid at signing time:
#   - web identity (settings): the export signs with STS's credentials and
#     names the source in job_runs, no secret anywhere;
#   - an export that outlives its credentials renews them ahead of expiry
#     (two keys sign its requests), none is used expired, every row once;
#   - S3 answering ExpiredToken once: renewed at once, sent again, once;
#   - a missing or unreadable web identity token file, and STS refusing the
#     token: a clear error, nothing written, checkpoint unmoved;
#   - the container endpoint (full URI, token file), and its host rules;
#   - IMDSv2 from the server's environment (IMDSv1 never tried), and IMDS
#     unreachable (refused, stalled) or turned off: "no credentials", fast;
#   - bucket policies: PutObject and multipart starts without the required
#     SSE-KMS headers are refused; with them, the storage class, CRC32C on
#     each part and the completion, and MD5, are sent and checked; a wrong
#     expected bucket owner is refused.
# Expects the environment of scripts/lib/common.sh's start_cluster (it
# starts a cluster of its own, with the library preloaded).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/s3/lib.sh"

DB=interactions_cron_s3_roles
BUCKET=lake
PREFIX=roles/
S3_PORT=$(free_port)
S3_BACKEND_PORT=$(free_port)
STS_PORT=$(free_port)
CONTAINER_PORT=$(free_port)
IMDS_PORT=$(free_port)
WORK=$(mktemp -d /tmp/interactions_cron_s3_roles.XXXXXX)
chmod 755 "$WORK"
FAKES_STATE="$WORK/fakes.json"
PROXY_STATS="$WORK/proxy.json"
KMS_KEY=arn:aws:kms:us-east-1:111122223333:key/test-key
OWNER=111122223333
s3_pid=
proxy_pid=
fakes_pid=
stall_pid=

# start_stall_server starts a server that stalls every request, on a port
# free at that moment (a port picked when the suite began may have been
# taken since, by any connection's ephemeral port), and sets STALL_PORT once
# it listens; a server that exits or does not listen in 10 s is tried again
# on another port.
start_stall_server() {
    for _ in 1 2 3; do
        STALL_PORT=$(free_port)
        : >"$WORK/stall.log"
        node "$REPO_ROOT/test/s3/misbehaving-server.mjs" --port "$STALL_PORT" --mode stall --log "$WORK/stall.log" \
            --lifetime 600 >>"$CLUSTER_DIR/misbehaving.log" 2>&1 &
        stall_pid=$!
        for _ in $(seq 100); do
            grep -q '^listening' "$WORK/stall.log" && return 0
            kill -0 "$stall_pid" 2>/dev/null || break
            sleep 0.1
        done
        stop_pid "$stall_pid"
    done
    die "the stalling server did not start: $(tail -5 "$CLUSTER_DIR/misbehaving.log")"
}

stop_all() { stop_pid "$stall_pid"; stop_pid "$fakes_pid"; stop_pid "$proxy_pid"; stop_pid "$s3_pid"; }
trap 'stop_all; rm -rf "$WORK"' EXIT

ensure_s3rver

# The server's environment names the fake IMDS, as an instance's would name
# 169.254.169.254: the chain's last source, used once no other is set.
export AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$IMDS_PORT"
start_cluster "shared_preload_libraries = 'interactions_cron'"
unset AWS_EC2_METADATA_SERVICE_ENDPOINT
S3_DATA="$CLUSTER_DIR/s3rver"
trap 'status=$?; [ "$status" -eq 0 ] || { tail -5 "$CLUSTER_DIR/verify-proxy.log"; tail -20 "$CLUSTER_DIR/server.log"; } >&2;
      stop_all; rm -rf "$WORK"; stop_cluster' EXIT

# start_fakes [OPTION...]: the credential fakes (their state survives a
# restart, so credentials issued before stay known to the proxy).
start_fakes() {
    stop_pid "$fakes_pid"
    node "$REPO_ROOT/test/s3/credential-fakes.mjs" --state "$FAKES_STATE" --sts-port "$STS_PORT" \
        --container-port "$CONTAINER_PORT" --imds-port "$IMDS_PORT" --container-token "container-secret-token" \
        --lifetime 1200 "$@" >>"$CLUSTER_DIR/fakes.log" 2>&1 &
    fakes_pid=$!
    for _ in $(seq 100); do
        [ "$(grep -c "imds listening on 127.0.0.1:$IMDS_PORT" "$CLUSTER_DIR/fakes.log" 2>/dev/null || true)" -ge 1 ] &&
            curl -s -o /dev/null "http://127.0.0.1:$IMDS_PORT/" && return 0
        sleep 0.1
    done
    die "the credential fakes did not start"
}
# restart_proxy [OPTION...]: the verifying proxy accepting the fakes' credentials, with rules.
restart_proxy() { stop_pid "$proxy_pid"; start_proxy --issued "$FAKES_STATE" "$@"; }
# fake_stat EXPRESSION: a Python expression over the fakes' state f.
fake_stat() { python3 -c "import json, sys; f = json.load(open(sys.argv[1])); print($1)" "$FAKES_STATE"; }
# asked KIND: how often the fakes were asked (sts, container, imdsToken, imdsRole, imdsCredentials).
asked() { fake_stat "f['requests'].get('$1', 0)"; }
# db_set NAME VALUE / db_reset NAME...: the database's interactions_cron.* settings.
db_set() { psql -X -q -d postgres -c "ALTER DATABASE $DB SET interactions_cron.$1 = '$2'"; }
db_reset() { local name; for name in "$@"; do psql -X -q -d postgres -c "ALTER DATABASE $DB RESET interactions_cron.$name"; done; }
# add_rows TENANT DAYS ROWS_PER_DAY: rows of a tenant spread over days (one file per day).
add_rows() {
    sql -q -c "INSERT INTO tenants (id, name) VALUES ('$1', '$1') ON CONFLICT DO NOTHING" \
        -c "INSERT INTO interaction_history (tenant_id, created_at, channel)
            SELECT '$1', now() - interval '1 hour' - d * interval '1 day' - r * interval '1 second', 'email'
            FROM generate_series(1, $2) d, generate_series(1, $3) r"
}
# export_tenant TENANT: the call's result, or its error (verbose, with the SQLSTATE).
export_tenant() {
    psql -X -At -v VERBOSITY=verbose -d "$DB" -c "SELECT interactions_cron.export_interactions(tenant_id => '$1')" 2>&1 || true
}
tenant_error() { json_get 'd["tenants"][0].get("error", "")'; }
checkpoint_rows() { sql -c "SELECT coalesce(sum(rows_exported), 0) FROM interactions_cron.export_checkpoints WHERE tenant_id = '$1'"; }
# expect_every_row_once WHAT: the bucket's objects hold each exported row exactly once.
expect_every_row_once() {
    download_all "$WORK/lake"
    expect "$1: every exported row is in exactly one object" \
        "$(duplicated_ids_and_lines "$WORK/lake/$PREFIX")" \
        "0 $(sql -c "SELECT sum(rows_exported) FROM interactions_cron.export_checkpoints")"
}

start_s3rver
start_fakes --expires-in 900
restart_proxy

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB"
for setting in "storage = 's3'" "s3_bucket = '$BUCKET'" "s3_prefix = '$PREFIX'" \
               "s3_endpoint = 'http://127.0.0.1:$S3_PORT'" "s3_path_style = on" \
               "export_dir = '$CLUSTER_DIR/s3_spool'" "max_workers = 1"; do
    psql -X -q -d postgres -c "ALTER DATABASE $DB SET interactions_cron.$setting"
done
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null

# --- The proxy can say no: temporary credentials without their token, or
# signed after they expired, are refused as S3 refuses them.
issue_sts() {
    curl -sS -X POST "http://127.0.0.1:$STS_PORT/" --data-urlencode "Action=AssumeRoleWithWebIdentity" \
        --data-urlencode "Version=2011-06-15" --data-urlencode "RoleSessionName=check" \
        --data-urlencode "RoleArn=arn:aws:iam::123456789012:role/interactions-cron" \
        --data-urlencode "WebIdentityToken=web-identity-token" >/dev/null
}
# signed_get KEY SECRET [TOKEN]: the HTTP status of a signed listing.
signed_get() {
    curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$1:$2" \
        -H "x-amz-content-sha256: $EMPTY_SHA" ${3:+-H "x-amz-security-token: $3"} \
        "http://127.0.0.1:$S3_PORT/$BUCKET?list-type=2"
}
issue_sts
read -r key secret token < <(fake_stat '" ".join([f["issued"][-1][k] for k in ("accessKeyId", "secretAccessKey", "sessionToken")])')
expect "the proxy accepts a role's credentials with their token" "$(signed_get "$key" "$secret" "$token")" 200
expect "the proxy refuses them without their token" "$(signed_get "$key" "$secret")" 400
start_fakes --expires-in 1
issue_sts
read -r key secret token < <(fake_stat '" ".join([f["issued"][-1][k] for k in ("accessKeyId", "secretAccessKey", "sessionToken")])')
sleep 1.5
expect "the proxy refuses credentials signed after they expired" "$(signed_get "$key" "$secret" "$token")" 400
expect "as ExpiredToken" "$(proxy_stat '"ExpiredToken" in s["rejections"][-1]')" True
rejected_before=$(proxy_stat 's["rejected"]')

# --- Web identity, configured by settings (the AWS_* variables' stand-ins).
start_fakes --expires-in 900
printf 'web-identity-token\n' >"$WORK/web-identity-token"
chmod 0644 "$WORK/web-identity-token"
db_set s3_role_arn arn:aws:iam::123456789012:role/interactions-cron
db_set s3_web_identity_token_file "$WORK/web-identity-token"
db_set s3_sts_endpoint "http://127.0.0.1:$STS_PORT"
add_rows acme 3 20
sts_before=$(asked sts)
result=$(export_tenant acme)
expect "web identity: the export is ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "web identity: it exported the rows" "$(json_get 'd["totalExported"]' <<<"$result")" 60
expect "web identity: the result names the source" "$(json_get 'd["credentials"]' <<<"$result")" "web identity"
expect "web identity: so does job_runs" \
    "$(sql -c "SELECT result->>'credentials' FROM interactions_cron.job_runs ORDER BY id DESC LIMIT 1")" "web identity"
expect "web identity: STS was asked (the call and its worker)" "$(( $(asked sts) - sts_before >= 1 ))" 1
expect "web identity: the uploads were signed with STS's credentials and token" \
    "$(proxy_stat 's["headers"]["PUT object"].get("x-amz-security-token", 0) == s["verifiedByOperation"]["PUT object"]')" True
expect "web identity: the proxy rejected none" "$(proxy_stat 's["rejected"]')" "$rejected_before"
expect_every_row_once "web identity"

# --- An export that outlives its credentials: they are handed out for five
# minutes and two seconds, so they are due for renewal two seconds after
# each fetch, and every upload is held 300 ms: the 16 files of the batch
# take longer than that.  Renewed ahead, never used expired.
start_fakes --expires-in 302
restart_proxy --delay-ms 300
add_rows long 16 5
keys_before=$(proxy_stat 'len(s["accessKeys"])')
result=$(export_tenant long)
expect "long export: ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "long export: all 80 rows" "$(json_get 'd["totalExported"]' <<<"$result")" 80
expect "long export: its uploads were signed with renewed credentials (two keys or more)" \
    "$(( $(proxy_stat 'len(s["accessKeys"])') - keys_before >= 2 ))" 1
expect "long export: no request was signed with expired credentials" "$(proxy_stat 's["rejected"]')" "$rejected_before"
expect_every_row_once "long export"

# --- S3 answers ExpiredToken once: the credentials are renewed at once and
# the upload sent again, exactly once.
start_fakes --expires-in 900
restart_proxy --expired-token-once "PUT object"
add_rows expired 1 10
sts_before=$(asked sts)
result=$(export_tenant expired)
expect "ExpiredToken: the export is ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "ExpiredToken: S3 answered it once" "$(proxy_stat 's["expiredTokenAnswered"]')" 1
expect "ExpiredToken: the credentials were renewed at once" "$(( $(asked sts) - sts_before >= 3 ))" 1
expect "ExpiredToken: the server says so" \
    "$(grep -c 'refused the credentials (ExpiredToken); renewed them' "$CLUSTER_DIR/server.log")" 1
expect_every_row_once "ExpiredToken"
restart_proxy

# --- A web identity token file that is missing, or unreadable, and a token
# STS refuses: the call fails with a clear error, nothing is written.
add_rows broken 1 5
keys_before=$(list_keys | wc -l)
db_set s3_web_identity_token_file "$WORK/no-such-token"
error=$(export_tenant broken)
expect "a missing token file is a clear error" \
    "$(grep -c "ERROR:  58P01: could not open web identity token file \"$WORK/no-such-token\": No such file or directory" <<<"$error")" 1
if [ "$(id -u)" -eq 0 ]; then
    install -m 0600 -o root "$WORK/web-identity-token" "$WORK/root-only-token"
    db_set s3_web_identity_token_file "$WORK/root-only-token"
    error=$(export_tenant broken)
    expect "an unreadable token file is a clear error" \
        "$(grep -c "ERROR:  42501: could not open web identity token file \"$WORK/root-only-token\": Permission denied" <<<"$error")" 1
fi
printf 'someone-else\n' >"$WORK/wrong-token"
chmod 0644 "$WORK/wrong-token"
db_set s3_web_identity_token_file "$WORK/wrong-token"
error=$(export_tenant broken)
expect "a token STS refuses is a clear error with STS's code" \
    "$(grep -c "could not obtain S3 credentials from web identity: STS at http://127.0.0.1:$STS_PORT/ refused AssumeRoleWithWebIdentity for arn:aws:iam::123456789012:role/interactions-cron: HTTP 400 InvalidIdentityToken" <<<"$error")" 1
db_reset s3_web_identity_token_file
error=$(export_tenant broken)
expect "a role without a token file is a clear error" \
    "$(grep -c "web identity needs both a role and a token file, but only the role is set" <<<"$error")" 1
expect "nothing was written" "$(list_keys | wc -l)" "$keys_before"
expect "its checkpoint did not move" "$(checkpoint_rows broken)" 0
db_reset s3_role_arn s3_sts_endpoint

# --- The container credentials endpoint (ECS, EKS Pod Identity): a full URI
# with an authorization token file; plain http only to the agents' hosts.
printf 'container-secret-token\n' >"$WORK/container-token"
chmod 0644 "$WORK/container-token"
db_set s3_container_credentials_full_uri "http://127.0.0.1:$CONTAINER_PORT/v2/credentials/task"
db_set s3_container_authorization_token_file "$WORK/container-token"
add_rows boxed 2 10
container_before=$(asked container)
result=$(export_tenant boxed)
expect "container: the export is ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "container: the result names the source" "$(json_get 'd["credentials"]' <<<"$result")" container
expect "container: the endpoint was asked with its token" "$(( $(asked container) - container_before >= 1 ))" 1
expect "container: it refused no request" "$(fake_stat 'len([r for r in f["refusals"] if r.startswith("container")])')" 0
printf 'wrong-token\n' >"$WORK/container-token"
error=$(export_tenant boxed)
expect "container: a token it refuses is a clear error" \
    "$(grep -c "could not obtain S3 credentials from container: the container credentials endpoint http://127.0.0.1:$CONTAINER_PORT/v2/credentials/task answered HTTP 401" <<<"$error")" 1
db_set s3_container_credentials_full_uri "http://192.0.2.1/v2/credentials/task"
error=$(export_tenant boxed)
expect "container: plain http to another host is refused" \
    "$(grep -c 'names a host that plain http may not reach' <<<"$error")" 1
db_reset s3_container_credentials_full_uri s3_container_authorization_token_file
expect_every_row_once "container"

# --- IMDSv2, from the server's environment: the chain's last source.
add_rows instance 1 10
token_before=$(asked imdsToken)
result=$(export_tenant instance)
expect "IMDS: the export is ok" "$(json_get 'd["ok"]' <<<"$result")" True
expect "IMDS: the result names the source" "$(json_get 'd["credentials"]' <<<"$result")" "instance metadata"
expect "IMDS: a session token was asked first" "$(( $(asked imdsToken) - token_before >= 1 ))" 1
expect "IMDS: IMDSv1 was never tried" "$(fake_stat 'len([r for r in f["refusals"] if "IMDSv1" in r])')" 0
expect_every_row_once "IMDS"

# IMDS unreachable: a closed port, then an endpoint that never answers.  The
# chain falls through to "no credentials" quickly (the S3 request deadline
# is minutes; the bound here only says "not that").
add_rows orphan 1 5
now_ms() { date +%s%3N; }
db_set s3_ec2_metadata_endpoint "http://127.0.0.1:$(free_port)"
started=$(now_ms)
error=$(export_tenant orphan)
elapsed=$(( $(now_ms) - started ))
expect "IMDS refused: no credentials" "$(grep -c 'no S3 credentials are configured' <<<"$error")" 1
expect "IMDS refused: the detail says why" "$(grep -c 'DETAIL:  EC2 instance metadata at .* did not answer (Failed to connect' <<<"$error")" 1
echo "IMDS refused: the call failed after ${elapsed} ms"
start_stall_server
db_set s3_ec2_metadata_endpoint "http://127.0.0.1:$STALL_PORT"
started=$(now_ms)
error=$(export_tenant orphan)
elapsed=$(( $(now_ms) - started ))
echo "IMDS stalled: the call failed after ${elapsed} ms"
expect "IMDS stalled: it was asked" "$(grep -c '^request PUT /latest/api/token' "$WORK/stall.log")" 1
expect "IMDS stalled: no credentials" "$(grep -c 'no S3 credentials are configured' <<<"$error")" 1
expect "IMDS stalled: the chain fell through quickly (< 15 s)" "$(( elapsed < 15000 ))" 1
db_reset s3_ec2_metadata_endpoint
db_set s3_ec2_metadata_disabled on
error=$(export_tenant orphan)
expect "IMDS turned off: no credentials, and why" "$(grep -c 'DETAIL:  EC2 instance metadata is turned off' <<<"$error")" 1
db_reset s3_ec2_metadata_disabled
expect "IMDS failures wrote nothing" "$(checkpoint_rows orphan)" 0

# No secret the fakes handed out is in job_runs or the server log.
secrets=$(fake_stat '"\n".join(c[k] for c in f["issued"] for k in ("secretAccessKey", "sessionToken"))')
runs=$(sql -c "SELECT string_agg(coalesce(result::text, '') || coalesce(error, ''), '') FROM interactions_cron.job_runs")
leaked=0
while read -r secret; do
    grep -qF -- "$secret" <<<"$runs" && leaked=$((leaked + 1))
    grep -qF -- "$secret" "$CLUSTER_DIR/server.log" && leaked=$((leaked + 1))
done <<<"$secrets"
expect "no secret or session token is in job_runs or the server log" "$leaked" 0

# --- Bucket policies: uploads and multipart starts must carry SSE-KMS with
# the key; the bucket belongs to $OWNER.
restart_proxy --bucket-owner "$OWNER" \
    --require "PUT object,POST multipart start:x-amz-server-side-encryption=aws:kms" \
    --require "PUT object,POST multipart start:x-amz-server-side-encryption-aws-kms-key-id=$KMS_KEY"
db_set s3_multipart_threshold 5MB
add_rows policy 2 10
sql -q -c "INSERT INTO tenants (id, name) VALUES ('whale', 'Whale')" \
    -c "INSERT INTO interaction_history (tenant_id, created_at, metadata)
        SELECT 'whale', timestamptz '2026-03-30 01:00:00+00' + g * interval '10 ms', jsonb_build_object('pad', repeat('w', 300))
        FROM generate_series(1, 20000) g"
result=$(export_tenant policy)
expect "a bucket policy refuses an upload without SSE" "$(tenant_error <<<"$result" | grep -c 'HTTP 403 AccessDenied')" 1
expect "the refusal was the policy's" "$(( $(proxy_stat 's["refusedByPolicy"]') >= 1 ))" 1
expect "its checkpoint did not move" "$(checkpoint_rows policy)" 0
db_set s3_sse aws:kms
db_set s3_sse_kms_key_id "$KMS_KEY"
db_set s3_storage_class STANDARD_IA
db_set s3_checksum crc32c
db_set s3_expected_bucket_owner "$OWNER"
result=$(export_tenant policy)
expect "with SSE-KMS the upload is accepted" "$(json_get 'd["ok"]' <<<"$result")" True
result=$(psql -X -At -d "$DB" -c "SELECT interactions_cron.export_interactions(tenant_id => 'whale', batch_size => 20000)")
expect "a multipart upload with SSE-KMS, a storage class and CRC32C is accepted" "$(json_get 'd["ok"]' <<<"$result")" True
header_count() { proxy_stat "s['headers'].get('$1', {}).get('$2', 0)"; }
for operation in "PUT object" "POST multipart start"; do
    for header in x-amz-server-side-encryption x-amz-server-side-encryption-aws-kms-key-id x-amz-storage-class; do
        expect "$operation carries $header" "$(( $(header_count "$operation" "$header") >= 1 ))" 1
    done
done
expect "PutObject carries its CRC32C (checked by the proxy)" "$(( $(header_count "PUT object" x-amz-checksum-crc32c) >= 1 ))" 1
expect "the multipart start declares CRC32C" "$(header_count "POST multipart start" x-amz-checksum-algorithm)" 1
expect "each part carries its CRC32C" "$(header_count "PUT part" x-amz-checksum-crc32c)" "$(proxy_stat 's["verifiedByOperation"]["PUT part"]')"
expect "the completion lists the parts' CRC32C (checked against the parts)" \
    "$(header_count "POST multipart completion" "ChecksumCRC32C in the body")" 1
expect "every request names the expected bucket owner" \
    "$(header_count "PUT part" x-amz-expected-bucket-owner)" "$(proxy_stat 's["verifiedByOperation"]["PUT part"]')"
expect "no part carries SSE (S3 wants it on the start only)" "$(header_count "PUT part" x-amz-server-side-encryption)" 0
key="$PREFIX$(json_get 'd["tenants"][0]["filePath"]' <<<"$result")"
expect "s3rver stored the storage class" \
    "$(curl -sS -I --aws-sigv4 "aws:amz:us-east-1:s3" --user "S3RVER:S3RVER" -H "x-amz-content-sha256: $EMPTY_SHA" \
        "http://127.0.0.1:$S3_PORT/$BUCKET/$(url_path "$key")" | grep -i '^x-amz-storage-class:' | tr -d '\r' | cut -d' ' -f2)" STANDARD_IA
db_set s3_checksum md5
add_rows digest 1 10
result=$(export_tenant digest)
expect "with Content-MD5 the upload is accepted (the proxy checks it)" "$(json_get 'd["ok"]' <<<"$result")" True
expect "PutObject carried Content-MD5" "$(( $(header_count "PUT object" content-md5) >= 1 ))" 1
db_set s3_expected_bucket_owner 999999999999
add_rows stranger 1 5
result=$(export_tenant stranger)
expect "a bucket of another owner is refused" "$(tenant_error <<<"$result" | grep -c 'HTTP 403 AccessDenied')" 1
expect "the proxy rejected no request of the extension" "$(proxy_stat 's["rejected"]')" "$rejected_before"
expect_every_row_once "bucket policies"
