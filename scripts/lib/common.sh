# Shared helpers of the demo, test and benchmark scripts (sourced, not run).
# PostgreSQL refuses to run as root, so clusters run as an unprivileged OS
# user (postgres) in a throwaway directory, on a free port, with a socket
# directory of their own, and are stopped when the calling script exits.

PG_OS_USER=${PG_OS_USER:-postgres}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# pg_bin prints the directory of PostgreSQL's programs, from pg_config.
pg_bin() {
    pg_config --bindir
}

# The Debian suite that ships each PostgreSQL major the project supports.
declare -A DEBIAN_SUITE_OF_PG=([15]=bookworm [17]=trixie [18]=sid)
SUPPORTED_PG_VERSIONS="15 17 18"

# host_pg_version prints the PostgreSQL major of the host's Debian suite, or
# HOST_PG_VERSION.
host_pg_version() {
    if [ -n "${HOST_PG_VERSION:-}" ]; then
        echo "$HOST_PG_VERSION"
        return
    fi
    local codename version
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    for version in $SUPPORTED_PG_VERSIONS; do
        [ "${DEBIAN_SUITE_OF_PG[$version]}" = "$codename" ] && { echo "$version"; return; }
    done
    die "Debian '$codename' ships no PostgreSQL this project tests: set HOST_PG_VERSION"
}

# package_list VERSION prints scripts/packages.txt (the one list .ci/run,
# the chroots and the README use) for PostgreSQL VERSION.
package_list() {
    sed "s/PGVERSION/$1/g" "$REPO_ROOT/scripts/packages.txt"
}

# ensure_packages installs what is missing from Debian's archive (needs root):
# scripts/packages.txt for the host's PostgreSQL.
ensure_packages() {
    local wanted
    mapfile -t wanted < <(package_list "$(host_pg_version)")
    local missing=()
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    # A machine may bring its own Node.js with npm; Debian's are only a fallback.
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root to install them)"
    log "installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# build_and_install builds the extension with PGXS and installs it (needs root);
# first for OLDER_PG_VERSION too, when an older major is installed beside
# (in a chroot: the major-upgrade TAP tests start its clusters).
build_and_install() {
    if [ -n "${OLDER_PG_VERSION:-}" ]; then
        log "building and installing interactions_cron for PostgreSQL $OLDER_PG_VERSION"
        local older_pg_config=/usr/lib/postgresql/$OLDER_PG_VERSION/bin/pg_config
        make -C "$REPO_ROOT" -s clean PG_CONFIG="$older_pg_config" >/dev/null
        make -C "$REPO_ROOT" -s PG_CONFIG="$older_pg_config"
        make -C "$REPO_ROOT" -s install PG_CONFIG="$older_pg_config" >/dev/null
    fi
    log "building and installing interactions_cron"
    make -C "$REPO_ROOT" -s clean >/dev/null
    make -C "$REPO_ROOT" -s
    make -C "$REPO_ROOT" -s install >/dev/null
}

# as_pg_user runs a command as the unprivileged cluster owner.
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_cluster creates and starts a throwaway cluster; it exports PGHOST,
# PGPORT, PGUSER, PGDATABASE and CLUSTER_DIR and stops it on exit.
# Extra postgresql.conf lines may be passed as arguments.
start_cluster() {
    CLUSTER_DIR=$(mktemp -d /tmp/interactions_cron.XXXXXX)
    chmod 755 "$CLUSTER_DIR"
    [ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER" "$CLUSTER_DIR"
    as_pg_user mkdir -p "$CLUSTER_DIR/socket" "$CLUSTER_DIR/exports"
    as_pg_user "$(pg_bin)/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$CLUSTER_DIR/initdb.log"; die "initdb failed"; }
    PGPORT=$(free_port)
    {
        echo "port = $PGPORT"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$CLUSTER_DIR/socket'"
        echo "interactions_cron.export_dir = '$CLUSTER_DIR/exports'"
        echo "fsync = on"
        for line in "$@"; do echo "$line"; done
    } | as_pg_user tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
    as_pg_user "$(pg_bin)/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null \
        || { cat "$CLUSTER_DIR/server.log"; die "could not start PostgreSQL"; }
    export PGHOST="$CLUSTER_DIR/socket" PGPORT PGUSER=postgres PGDATABASE=postgres CLUSTER_DIR
    trap stop_cluster EXIT
}

# stop_cluster stops the throwaway cluster and removes it unless KEEP_CLUSTER=1.
stop_cluster() {
    [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR/data" ] || return 0
    as_pg_user "$(pg_bin)/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
        log "cluster kept in $CLUSTER_DIR"
    else
        rm -rf "$CLUSTER_DIR"
    fi
}

# ensure_duckdb installs the DuckDB reader (npm @duckdb/node-api) used to read
# the exported files back, from the lock file in test/duckdb.
ensure_duckdb() {
    [ -d "$REPO_ROOT/test/duckdb/node_modules/@duckdb/node-api" ] && return 0
    log "installing the DuckDB reader (npm ci)"
    (cd "$REPO_ROOT/test/duckdb" && npm ci --no-audit --no-fund --loglevel=error)
}

# duplicated_ids_and_lines ROOT: for the plain NDJSON files under
# ROOT/exports, prints "<ids in more than one line> <lines>".
duplicated_ids_and_lines() {
    local files=("$1"/exports/*/interaction_history/*/*/*/*.json)
    printf '%s %s' "$(cat "${files[@]}" | grep -o '^{"id":[0-9]*' | sort | uniq -d | wc -l)" \
        "$(cat "${files[@]}" | wc -l)"
}
