#!/usr/bin/env bash
# The Debian packages: dpkg-buildpackage builds postgresql-NN-interactions-cron
# (NN: the PostgreSQL of pg_config, the one the Debian suite ships) and
# interactions-cron-http from the tracked files (its own build runs
# installcheck against the package tree), lintian finds no error, apt
# installs both .debs, and the regress and isolation suites pass against a
# throwaway cluster that loads the installed package's library.  Needs root
# (apt); expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

[ "$(id -u)" -eq 0 ] || { echo "skipped: installing packages needs root"; exit 0; }

build_dir=$(mktemp -d /tmp/interactions_cron_package.XXXXXX)
trap 'rm -rf "$build_dir"' EXIT
# The build's installcheck runs its server as postgres, which reads the package tree.
chmod 755 "$build_dir"
mkdir "$build_dir/interactions-cron"
if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO_ROOT" ls-files -z | (cd "$REPO_ROOT" && tar --null -T - -cf -) \
        | tar -C "$build_dir/interactions-cron" -xf -
else
    (cd "$REPO_ROOT" && tar --exclude=node_modules --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - .) \
        | tar -C "$build_dir/interactions-cron" -xf -
fi

pg_major=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
package=postgresql-$pg_major-interactions-cron

log "pg_buildext updatecontrol; dpkg-buildpackage -us -uc -b"
(cd "$build_dir/interactions-cron" && pg_buildext updatecontrol) || die "pg_buildext updatecontrol failed"
grep -qx "Package: $package" "$build_dir/interactions-cron/debian/control" \
    || die "debian/control has no $package: is $pg_major in debian/pgversions?"
# The build's own installcheck (pg_virtualenv) makes a cluster of its own: not on our PGPORT.
(cd "$build_dir/interactions-cron" &&
    env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE dpkg-buildpackage -us -uc -b) > "$build_dir/build.log" 2>&1 \
    || { grep -m 40 -E '^\+(ERROR|WARNING|FATAL)|^### |Error' "$build_dir/build.log"
         tail -20 "$build_dir/build.log"; die "dpkg-buildpackage failed"; }
ls "$build_dir"/*.deb

log "lintian"
lintian --fail-on error "$build_dir"/interactions-cron_*.changes || die "lintian reports errors"

log "installing the packages"
apt-get install -y "$build_dir"/${package}_*_*.deb \
    "$build_dir"/interactions-cron-http_*_*.deb >/dev/null
library="$(pg_config --pkglibdir)/interactions_cron.so"
expect_owner=$(dpkg-query -S "$library" | cut -d: -f1)
[ "$expect_owner" = "$package" ] || die "$library belongs to '$expect_owner'"
dpkg --verify "$package" interactions-cron-http \
    || die "installed files differ from the packages'"
[ "$(stat -c %a /etc/interactions-cron-http.env)" = 600 ] || die "/etc/interactions-cron-http.env is not mode 0600"
[ -x /usr/sbin/interactions-cron-http ] || die "the shim is not installed"
[ -f /lib/systemd/system/interactions-cron-http.service ] || die "the systemd unit is missing"
[ "$(stat -c %a /etc/interactions-cron-http)" = 700 ] || die "/etc/interactions-cron-http is not mode 0700"
dpkg-query -W -f='${Depends}' "$package" | grep -q "postgresql-$pg_major" \
    || die "the extension package does not depend on postgresql-$pg_major"
echo "ok: both packages installed; $library is the package's, unmodified"

log "installcheck against the installed package"
db_dir="$build_dir/installcheck"
mkdir -p "$db_dir"
cp -r "$REPO_ROOT/Makefile" "$REPO_ROOT/sql" "$REPO_ROOT/expected" "$REPO_ROOT/test" "$REPO_ROOT/reference" "$db_dir/"
rm -rf "$db_dir/sql/install" "$db_dir/test/duckdb/node_modules" "$db_dir/test/s3/node_modules"
chown -R "$PG_OS_USER" "$db_dir"
as_pg_user env PGHOST="$PGHOST" PGPORT="$PGPORT" make -C "$db_dir" -s installcheck
