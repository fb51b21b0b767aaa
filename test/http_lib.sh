# Shared helpers of the shell suites that run the HTTP shim (sourced, not
# run, after lib.sh): a work directory and the shims and helpers started,
# removed and stopped on exit; start_shim, call and their friends.

SHIM=${SHIM:-$(pg_config --bindir)/interactions-cron-http}
HOSTILE="python3 $(dirname "$0")/http_hostile.py"
WORK=$(mktemp -d "/tmp/interactions_cron_$(basename "$0" .sh).XXXXXX")
shim_pids=()
helper_pids=()
cleanup_shims() {
    for pid in "${shim_pids[@]}" "${helper_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup_shims EXIT

is_json() { python3 -c 'import json, sys; json.loads(sys.stdin.read())' <<<"$1"; }

# start_shim NAME PORT [VAR=VALUE ...]: runs the shim in the background,
# logging to $WORK/NAME.log, and waits until it listens; its pid is then in
# $shim_pid.
start_shim() {
    local name=$1 port=$2
    shift 2
    env -i PATH="$PATH" HOST=127.0.0.1 PORT="$port" STATEMENT_TIMEOUT_MS=60000 "$@" \
        "$SHIM" 2>"$WORK/$name.log" &
    shim_pid=$!
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
# status_of / body_of split call's "STATUS BODY" (a body may have many lines).
status_of() { printf '%s' "${1%% *}"; }
body_of() { printf '%s' "${1#* }"; }
# within SECONDS COMMAND...: true once COMMAND succeeds, false if it still
# fails after SECONDS (checked every 0.1 s).
within() {
    local tries=$(($1 * 10))
    shift
    for _ in $(seq "$tries"); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
