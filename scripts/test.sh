#!/usr/bin/env bash
# Runs every test suite of interactions_cron against throwaway clusters:
#   pg_regress, isolation specs, TAP crash tests, pgTAP, and the DuckDB
#   read-back, on each PostgreSQL major the project supports: the host's own
#   (15 on Debian bookworm) and the others (17, 18) in Debian chroots that
#   scripts/lib/chroot.sh makes once and reuses.  On a fresh Debian machine,
#   as root, it installs what is missing first.
#   Usage: [PG_VERSIONS="15 17 18"] scripts/test.sh [suite ...]
#   (suites: symbols regress isolation tap pgtap docs disk_full duckdb s3 http metrics pg_cron package;
#   default: all; package, last, installs the built Debian packages over `make install`'s files)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/chroot.sh"

SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(symbols regress isolation tap pgtap docs disk_full duckdb s3 http metrics pg_cron package)
passed=0
failed=0
failed_names=()

# WORK_DIR is a copy of the tests (and the Makefile, for its test targets;
# the headers, src/fsync_together.c, which t/047 builds outside the server,
# and src/file_sink.c, which t/049 builds into a module of its own) readable
# and writable by the cluster's OS user, wherever the repository itself lives.
prepare_work_dir() {
    WORK_DIR=$(mktemp -d /tmp/interactions_cron_tests.XXXXXX)
    cp -r "$REPO_ROOT/Makefile" "$REPO_ROOT/sql" "$REPO_ROOT/expected" "$REPO_ROOT/test" \
        "$REPO_ROOT/reference" "$REPO_ROOT/include" "$WORK_DIR/"
    mkdir "$WORK_DIR/src" && cp "$REPO_ROOT/src/fsync_together.c" "$REPO_ROOT/src/file_sink.c" "$WORK_DIR/src/"
    rm -rf "$WORK_DIR/test/duckdb/node_modules" "$WORK_DIR/test/s3/node_modules" "$WORK_DIR/sql/install"
    chmod -R a+rX "$WORK_DIR"
    [ "$(id -u)" -eq 0 ] && chown -R "$PG_OS_USER" "$WORK_DIR"
    return 0
}

record() {
    local name=$1 status=$2
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); failed_names+=("$name"); echo "not ok - $name"
    fi
}

# The pg_regress, isolation and TAP suites are the Makefile's PGXS targets:
# installcheck against the throwaway cluster (split in two suites), and
# prove_installcheck, whose tests start clusters of their own.
pgxs_target() {
    as_pg_user env PGHOST="$PGHOST" PGPORT="$PGPORT" make -C "$WORK_DIR" -s "$@"
}

run_regress() {
    pgxs_target installcheck ISOLATION=
}

run_isolation() {
    pgxs_target installcheck REGRESS=
}

# An older major installed beside this one (OLDER_PG_VERSION) is where the
# major-upgrade tests (008, 009) start their old cluster.
run_tap() {
    local older=()
    [ -z "${OLDER_PG_VERSION:-}" ] || older=(OLDER_PG_INSTALL="/usr/lib/postgresql/$OLDER_PG_VERSION")
    as_pg_user env PGHOST="$PGHOST" PGPORT="$PGPORT" "${older[@]}" \
        make -C "$WORK_DIR" -s prove_installcheck PROVE_FLAGS="--timer -v"
}

run_pgtap() {
    as_pg_user env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c "CREATE DATABASE interactions_cron_pgtap" \
        -c "ALTER DATABASE interactions_cron_pgtap SET interactions_cron.export_dir = '$CLUSTER_DIR/pgtap_exports'" >/dev/null
    as_pg_user env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -q -v ON_ERROR_STOP=1 -d interactions_cron_pgtap \
        -c "SET client_min_messages = warning" -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION interactions_cron" \
        -f "$WORK_DIR/reference/schema.sql" >/dev/null
    (cd "$WORK_DIR" && as_pg_user env PGHOST="$PGHOST" PGPORT="$PGPORT" \
        pg_prove -d interactions_cron_pgtap test/pgtap/*.sql)
}

run_docs() {
    bash "$REPO_ROOT/test/docs.sh"
}

run_disk_full() {
    bash "$REPO_ROOT/test/disk_full.sh"
}

run_pg_cron() {
    bash "$REPO_ROOT/test/pg_cron_e2e.sh"
}

run_http() {
    bash "$REPO_ROOT/test/http_shim.sh"
}

run_metrics() {
    bash "$REPO_ROOT/test/metrics.sh"
}

run_s3() {
    bash "$REPO_ROOT/test/s3_sink.sh" && bash "$REPO_ROOT/test/s3_credentials.sh"
}

run_package() {
    bash "$REPO_ROOT/test/package.sh"
}

run_symbols() {
    bash "$REPO_ROOT/test/symbols.sh"
}

run_duckdb() {
    ensure_duckdb
    bash "$REPO_ROOT/test/duckdb/readback.sh"
}

# run_suites_here runs the suites on this machine's PostgreSQL (the host's,
# or a chroot's when scripts/test.sh runs inside one).
run_suites_here() {
    ensure_packages
    build_and_install
    prepare_work_dir
    start_cluster "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'postgres'" \
        "cron.use_background_workers = on" "max_worker_processes = 16"

    for suite in "${SUITES[@]}"; do
        log "suite: $suite (PostgreSQL $(pg_config --version | awk '{print $2}'))"
        set +e
        "run_$suite"
        status=$?
        set -e
        record "$suite" "$status"
        if [ "$status" -ne 0 ]; then
            find "$WORK_DIR" -name regression.diffs -exec cat {} + 2>/dev/null | head -200
        fi
    done

    [ "$failed" -eq 0 ] && rm -rf "$WORK_DIR"
    echo
    [ "$failed" -gt 0 ] && echo "failed suites: ${failed_names[*]} (outputs kept in $WORK_DIR)"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# run_versions runs the suites on each of PG_VERSIONS in turn and sums up
# each version's suites and time.
run_versions() {
    local version start status summary version_passed version_failed lines=() log_file
    log_file=$(mktemp /tmp/interactions_cron_versions.XXXXXX)
    for version in $PG_VERSIONS; do
        log "PostgreSQL $version"
        start=$SECONDS
        set +e
        (run_on_version "$version" scripts/test.sh "${SUITES[@]}") 2>&1 | tee "$log_file"
        status=${PIPESTATUS[0]}
        set -e
        summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log_file" | tail -1)
        version_passed=0
        version_failed=0
        [ -z "$summary" ] || read -r version_passed _ version_failed _ <<< "${summary/,/}"
        # A run that stopped outside its suites (a build, a chroot) counts as one failed suite.
        [ "$status" -eq 0 ] || [ "$version_failed" -gt 0 ] || version_failed=1
        passed=$((passed + version_passed))
        failed=$((failed + version_failed))
        [ "$status" -eq 0 ] || failed_names+=("$version")
        lines+=("PostgreSQL $version: $version_passed passed, $version_failed failed, in $((SECONDS - start)) s")
    done
    rm -f "$log_file"
    echo
    printf '%s\n' "${lines[@]}"
    [ ${#failed_names[@]} -eq 0 ] || echo "failed on PostgreSQL ${failed_names[*]}"
    echo "$passed passed, $failed failed"
    [ ${#failed_names[@]} -eq 0 ]
}

PG_VERSIONS=${PG_VERSIONS:-$SUPPORTED_PG_VERSIONS}
if [ "$(echo $PG_VERSIONS)" = "$(host_pg_version)" ]; then
    run_suites_here
else
    run_versions
fi
