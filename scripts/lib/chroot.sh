# Debian chroots for the PostgreSQL majors the host does not ship (sourced,
# not run; needs root).  Each major comes from the Debian suite that carries
# it; the chroot is made once with debootstrap under CHROOT_CACHE_DIR,
# outside the repository, and reused while its package list is unchanged.
# A run copies the repository's files into a fresh directory, bind-mounts it
# into the chroot with /proc, /sys and /dev, and unmounts all of it on exit.

CHROOT_CACHE_DIR=${CHROOT_CACHE_DIR:-/var/cache/interactions_cron}
CHROOT_MOUNTS=()
# The older major each chroot holds beside its own, from the older suite
# (apt pinned so that it brings only what its own suite lacks), for the TAP
# tests that move a database to a newer major: trixie holds bookworm's 15
# (dump and restore, pg_upgrade 15 to 17), sid trixie's 17 (17 to 18).
declare -A OLDER_PG_BESIDE=([17]=15 [18]=17)

# debian_suite_for_pg VERSION prints the Debian suite whose PostgreSQL is VERSION.
debian_suite_for_pg() {
    [ -n "${DEBIAN_SUITE_OF_PG[$1]:-}" ] || die "PostgreSQL $1 is in no Debian suite this project tests ($SUPPORTED_PG_VERSIONS)"
    echo "${DEBIAN_SUITE_OF_PG[$1]}"
}

# debian_mirror prints the Debian archive the host's apt uses (or
# DEBIAN_MIRROR), so that the chroots come from the same place.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -E '^[[:space:]]*(URIs:|deb )' | grep -o -E 'https?://[^ ]*/debian/?( |$)' | head -1 | tr -d ' ')
    [ -n "$uri" ] || die "no Debian archive in the host's apt sources: set DEBIAN_MIRROR"
    echo "$uri"
}

# chroot_dir VERSION prints where VERSION's chroot lives.
chroot_dir() {
    echo "$CHROOT_CACHE_DIR/chroot-$(debian_suite_for_pg "$1")"
}

# chroot_packages VERSION prints the packages the chroot needs: the test
# packages of scripts/packages.txt for VERSION, debootstrap's minimal system
# lacking the rest (Debian's Node.js and npm for the DuckDB and S3 suites).
chroot_packages() {
    package_list "$1"
    if [ -n "${OLDER_PG_BESIDE[$1]:-}" ]; then
        printf '%s\n' "postgresql-${OLDER_PG_BESIDE[$1]}" "postgresql-server-dev-${OLDER_PG_BESIDE[$1]}"
    fi
    printf '%s\n' ca-certificates procps python3 nodejs npm
}

# chroot_mount DIR: /proc, /sys, /dev (with /dev/pts and /dev/shm, where
# PostgreSQL's dynamic shared memory lives) inside DIR.
chroot_mount() {
    local dir=$1
    mount -t proc proc "$dir/proc" && CHROOT_MOUNTS+=("$dir/proc")
    mount -t sysfs sysfs "$dir/sys" && CHROOT_MOUNTS+=("$dir/sys")
    local sub
    for sub in /dev /dev/pts /dev/shm; do
        mkdir -p "$dir$sub"
        mount --bind "$sub" "$dir$sub" && CHROOT_MOUNTS+=("$dir$sub")
    done
}

# chroot_bind SOURCE DIR TARGET bind-mounts SOURCE at TARGET inside DIR.
chroot_bind() {
    mkdir -p "$2$3"
    mount --bind "$1" "$2$3" && CHROOT_MOUNTS+=("$2$3")
}

# chroot_unmount_all unmounts, newest first, everything chroot_mount and
# chroot_bind mounted.
chroot_unmount_all() {
    local i
    for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${CHROOT_MOUNTS[$i]}" 2>/dev/null || umount -l "${CHROOT_MOUNTS[$i]}" || true
    done
    CHROOT_MOUNTS=()
}

# in_chroot DIR COMMAND... runs COMMAND as root inside DIR with a clean
# environment.  Where the host trusts extra certificate authorities for
# Node.js (NODE_EXTRA_CA_CERTS: a proxy's, say), npm in the chroot trusts
# them too, from a copy of that file.
in_chroot() {
    local dir=$1 ca=()
    shift
    if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
        cp "$NODE_EXTRA_CA_CERTS" "$dir/etc/ssl/host-extra-ca.crt"
        ca=(NODE_EXTRA_CA_CERTS=/etc/ssl/host-extra-ca.crt npm_config_cafile=/etc/ssl/host-extra-ca.crt)
    fi
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive CI="${CI:-}" "${ca[@]}" chroot "$dir" "$@"
}

# ensure_chroot VERSION makes VERSION's chroot unless a complete one with
# the same package list is already there.
ensure_chroot() {
    local version=$1 suite dir wanted
    suite=$(debian_suite_for_pg "$version")
    dir=$(chroot_dir "$version")
    wanted=$(chroot_packages "$version" | sort -u | tr '\n' ' ')
    if [ -f "$dir/.interactions_cron_packages" ] && [ "$(cat "$dir/.interactions_cron_packages")" = "$wanted" ]; then
        return 0
    fi
    command -v debootstrap >/dev/null || { apt-get update && apt-get install -y debootstrap; } >/dev/null \
        || die "could not install debootstrap"
    if [ ! -f "$dir/.interactions_cron_debootstrapped" ]; then
        log "debootstrap $suite into $dir"
        rm -rf "$dir"
        mkdir -p "$CHROOT_CACHE_DIR"
        debootstrap --variant=minbase "$suite" "$dir" "$(debian_mirror)" >"$CHROOT_CACHE_DIR/debootstrap-$suite.log" 2>&1 \
            || { tail -20 "$CHROOT_CACHE_DIR/debootstrap-$suite.log"; die "debootstrap $suite failed"; }
        touch "$dir/.interactions_cron_debootstrapped"
    fi
    # An archive that is a snapshot serves sid's Release past its
    # Valid-Until; services are never started by package scripts; the tests
    # make their own clusters, so postgresql-common makes no main cluster.
    echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99interactions-cron"
    printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    local older=${OLDER_PG_BESIDE[$version]:-} older_suite
    if [ -n "$older" ]; then
        older_suite=$(debian_suite_for_pg "$older")
        echo "deb $(debian_mirror) $older_suite main" > "$dir/etc/apt/sources.list.d/$older_suite.list"
        printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$older_suite" \
            > "$dir/etc/apt/preferences.d/$older_suite"
    fi
    mkdir -p "$dir/etc/postgresql-common/createcluster.d"
    echo 'create_main_cluster = false' > "$dir/etc/postgresql-common/createcluster.d/interactions-cron.conf"
    log "installing PostgreSQL $version and the test packages into $dir"
    chroot_mount "$dir"
    # shellcheck disable=SC2046
    { in_chroot "$dir" apt-get update &&
      in_chroot "$dir" apt-get install -y --no-install-recommends $(chroot_packages "$version"); } \
        >"$CHROOT_CACHE_DIR/apt-$suite.log" 2>&1
    local status=$?
    chroot_unmount_all
    [ $status -eq 0 ] || { tail -30 "$CHROOT_CACHE_DIR/apt-$suite.log"; die "installing packages into $dir failed"; }
    echo "$wanted" > "$dir/.interactions_cron_packages"
}

# run_in_chroot VERSION SCRIPT ARG... copies the repository into a fresh
# directory, bind-mounts it at /src inside VERSION's chroot and runs SCRIPT
# (scripts/test.sh, scripts/bench.sh) there with ARG..., on that chroot's
# PostgreSQL; the BENCH_* and KEEP_CLUSTER settings go along.
run_in_chroot() {
    local version=$1 script=$2 dir copy status
    shift 2
    dir=$(chroot_dir "$version")
    copy=$(mktemp -d /tmp/interactions_cron_src.XXXXXX)
    chmod 755 "$copy"
    copy_repository "$copy"
    chroot_mount "$dir"
    chroot_bind "$copy" "$dir" /src
    set +e
    # shellcheck disable=SC2046
    in_chroot "$dir" env HOST_PG_VERSION="$version" PG_VERSIONS="$version" \
        OLDER_PG_VERSION="${OLDER_PG_BESIDE[$version]:-}" $(env | grep -E '^(BENCH_[A-Z_]+|KEEP_CLUSTER)=' || true) \
        "/src/$script" "$@"
    status=$?
    set -e
    chroot_unmount_all
    rm -rf "$copy"
    [ $status -eq 0 ] || log "PostgreSQL $version: the /tmp paths above are under $dir"
    return $status
}

# run_on_version VERSION SCRIPT ARG... runs SCRIPT with ARG... on PostgreSQL
# VERSION: on the host when it is the host's, else in that version's chroot
# (made first if need be).
run_on_version() {
    local version=$1 script=$2
    shift 2
    if [ "$version" = "$(host_pg_version)" ]; then
        env PG_VERSIONS="$version" "$REPO_ROOT/$script" "$@"
    else
        [ "$(id -u)" -eq 0 ] || die "PostgreSQL $version runs in a chroot, which needs root"
        trap chroot_unmount_all EXIT
        ensure_chroot "$version"
        run_in_chroot "$version" "$script" "$@"
    fi
}

# copy_repository DEST copies the repository's tracked files, as they are in
# the working tree, into DEST (every file, without git, outside a clone).
copy_repository() {
    if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$REPO_ROOT" ls-files -z --cached --others --exclude-standard \
            | (cd "$REPO_ROOT" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$1" -xf -
    else
        (cd "$REPO_ROOT" && tar --exclude=node_modules --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - .) \
            | tar -C "$1" -xf -
    fi
}
