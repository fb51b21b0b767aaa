#!/usr/bin/env bash
# Full disk: the export directory is a small tmpfs.  The tenant whose batch
# does not fit fails with ENOSPC, its temporary file is removed and its
# checkpoint stays; the small tenant exports; once there is room again the
# retry writes every row exactly once.  Mounting needs root: as another user
# this suite says so and is counted as failed rather than silently passing.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "the disk-full suite mounts a tmpfs and must run as root"

DB=interactions_cron_disk_full
MOUNT_DIR="$CLUSTER_DIR/tiny_disk"
mkdir -p "$MOUNT_DIR"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$MOUNT_DIR"
trap 'umount "$MOUNT_DIR" 2>/dev/null || true' EXIT
chown "$PG_OS_USER" "$MOUNT_DIR"


psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" \
    -c "ALTER DATABASE $DB SET interactions_cron.export_dir = '$MOUNT_DIR'"
sql -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION interactions_cron" \
    -f "$REPO_ROOT/reference/schema.sql" >/dev/null
sql -q <<'SQL'
INSERT INTO tenants (id, name) VALUES ('big', 'Big'), ('small', 'Small');
INSERT INTO interaction_history (tenant_id, created_at, metadata)
SELECT 'big', timestamptz '2026-03-30 00:00:00+00' + g * interval '1 second',
       jsonb_build_object('padding', repeat('x', 200))
FROM generate_series(1, 5000) g;
INSERT INTO interaction_history (tenant_id, created_at) VALUES ('small', '2026-03-30 00:00:00+00');
SQL


# One worker, so the tenants take turns: with two, small's one line can meet
# ENOSPC while big's temporary file still fills the disk.  That failure is
# correct too, but it is not the isolation this suite checks.
result=$(sql -q -c "SET interactions_cron.max_workers = 1" -c "SELECT interactions_cron.export_interactions()")
echo "$result"
expect "the run is not ok" "$(sql -c "SELECT ('$result'::jsonb->>'ok')")" false
expect "big fails with ENOSPC" \
    "$(sql -c "SELECT t->>'error' LIKE '%No space left on device%' FROM jsonb_array_elements('$result'::jsonb->'tenants') t WHERE t->>'tenantId' = 'big'")" t
expect "small still exports" \
    "$(sql -c "SELECT t->>'exported' FROM jsonb_array_elements('$result'::jsonb->'tenants') t WHERE t->>'tenantId' = 'small'")" 1
expect "big's checkpoint is failed and unmoved" \
    "$(sql -c "SELECT status || ' ' || coalesce(last_id, 'none') FROM interactions_cron.export_checkpoints WHERE tenant_id = 'big'")" \
    "failed none"
expect "no temporary file is left" "$(find "$MOUNT_DIR" -name '.*.tmp' | wc -l)" 0

mount -o remount,size=16m "$MOUNT_DIR"
result=$(sql -c "SELECT interactions_cron.export_interactions()")
expect "the retry exports big" \
    "$(sql -c "SELECT t->>'exported' FROM jsonb_array_elements('$result'::jsonb->'tenants') t WHERE t->>'tenantId' = 'big'")" 5000
expect "every row is in exactly one line" \
    "$(duplicated_ids_and_lines "$MOUNT_DIR")" \
    "0 5001"
