# Shared helpers of the S3 shell suites (sourced after test/lib.sh): the
# test server's tools (s3rver, the verifying proxy), signed GETs of the
# bucket $BUCKET through the proxy on $S3_PORT with the static test key, and
# reading the proxy's counts in $PROXY_STATS.

EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# stop_pid PID: ends one process this suite started.
stop_pid() {
    if [ -n "$1" ]; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

# ensure_s3rver installs the test server's packages from the lock file.
ensure_s3rver() {
    [ -x "$REPO_ROOT/test/s3/node_modules/.bin/s3rver" ] &&
        [ -d "$REPO_ROOT/test/s3/node_modules/@smithy/signature-v4" ] &&
        [ -d "$REPO_ROOT/test/s3/node_modules/@aws-crypto/crc32c" ] && return 0
    (cd "$REPO_ROOT/test/s3" && npm ci --no-audit --no-fund --loglevel=error)
}
# proxy_stat EXPRESSION: a Python expression over the proxy's counts s.
proxy_stat() { python3 -c "import json, sys; s = json.load(open(sys.argv[1])); print($1)" "$PROXY_STATS"; }

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
export_run() { sql -c "SELECT interactions_cron.export_interactions($1)"; }
# json_get EXPRESSION: evaluates a Python expression over the JSON document d on stdin.
json_get() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# start_s3rver: s3rver on $S3_BACKEND_PORT, storing in $S3_DATA, with the
# bucket $BUCKET; sets s3_pid.
start_s3rver() {
    mkdir -p "$S3_DATA"
    "$REPO_ROOT/test/s3/node_modules/.bin/s3rver" -d "$S3_DATA" -a 127.0.0.1 -p "$S3_BACKEND_PORT" \
        --configure-bucket "$BUCKET" >>"$CLUSTER_DIR/s3rver.log" 2>&1 &
    s3_pid=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$S3_BACKEND_PORT/" && return 0
        sleep 0.1
    done
    die "s3rver did not start"
}

# start_proxy [OPTION...]: the verifying proxy on $S3_PORT in front of
# s3rver, counting in $PROXY_STATS, with verify-proxy.mjs's further options;
# sets proxy_pid.
start_proxy() {
    local log="$CLUSTER_DIR/verify-proxy.log" started
    started=$(grep -c "listening on 127.0.0.1:$S3_PORT" "$log" 2>/dev/null || true)
    node "$REPO_ROOT/test/s3/verify-proxy.mjs" --listen "$S3_PORT" --backend "$S3_BACKEND_PORT" \
        --stats "$PROXY_STATS" --lifetime 1800 "$@" >>"$log" 2>&1 &
    proxy_pid=$!
    for _ in $(seq 100); do
        [ "$(grep -c "listening on 127.0.0.1:$S3_PORT" "$log" 2>/dev/null || true)" -gt "${started:-0}" ] && return 0
        sleep 0.1
    done
    die "the verifying proxy did not start"
}
