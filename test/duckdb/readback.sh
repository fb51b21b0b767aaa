#!/usr/bin/env bash
# DuckDB read-back: export a tricky data set in many small batches (plain,
# .json.gz and .json.zst; .json.gz in large ones too), read every file back
# with DuckDB, and compare each column with the source rows.
# Expects the environment of scripts/lib/common.sh's start_cluster.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/common.sh"

DB=interactions_cron_readback
CSV=$(mktemp /tmp/interactions_cron_readback.XXXXXX.csv)
chmod 644 "$CSV"
trap 'rm -f "$CSV"' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/reference/schema.sql" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
INSERT INTO tenants (id, name) VALUES
    ('acme', 'Acme Corp'), ('a/b', 'Slash'), ('..', 'Dots'), ('with space', 'Space'), ('100%', 'Percent');
-- 3 UTC days, 40 rows sharing each created_at, awkward text, NULLs, non-finite numbers.
INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, direction, event_type, score, metadata)
SELECT t.id,
       timestamptz '2026-03-28 23:00:00+00' + (g / 40) * interval '37 minutes 1.234567 seconds',
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'contact "' || g || E'"\n\\ üñí 😀' END,
       (ARRAY['email', 'sms', '', 'voice'])[1 + g % 4],
       CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END,
       E'event\ttab',
       CASE g % 50 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN NULL
                   ELSE g / 7.0 END,
       CASE WHEN g % 11 = 0 THEN NULL
            ELSE jsonb_build_object('g', g, 'tags', jsonb_build_array('x', g % 3), 'nested', jsonb_build_object('q', '"quoted"')) END
FROM tenants t, generate_series(1, 4000) g;
-- A tenant with 20,000 rows in one day: a gzip file of several members.
INSERT INTO tenants (id, name) VALUES ('bulk', 'Bulk');
INSERT INTO interaction_history (tenant_id, created_at, contact_id, channel, direction, event_type, metadata)
SELECT 'bulk', timestamptz '2026-03-29 01:00:00+00' + g * interval '1.5 seconds', 'contact ' || g, 'email',
       'outbound', 'sent', jsonb_build_object('g', g, 'subject', 'Spring offer ' || g % 97)
FROM generate_series(1, 20000) g;
SQL

# export_until_caught_up DATABASE [BATCH_SIZE] exports in batches of
# BATCH_SIZE (700) until a call exports nothing, and prints how many calls it
# took.
export_until_caught_up() {
    local database=$1 batch_size=${2:-700} runs=0 exported
    while :; do
        exported=$(psql -X -At -v ON_ERROR_STOP=1 -d "$database" \
            -c "SELECT (interactions_cron.export_interactions(batch_size => $batch_size)->>'totalExported')")
        runs=$((runs + 1))
        [ "$exported" = 0 ] && break
        [ "$runs" -lt 100 ] || die "the export did not catch up"
    done
    echo "export runs: $runs"
}

# export_and_read_back COMPRESSION [BATCH_SIZE]: exports everything again
# into its own directory, reads it back with DuckDB and compares every
# column.
export_and_read_back() {
    local compression=$1 batch_size=${2:-700} extension=json
    local dir="$CLUSTER_DIR/readback_${compression}_$batch_size"
    [ "$compression" = gzip ] && extension=json.gz
    [ "$compression" = zstd ] && extension=json.zst
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER DATABASE $DB SET interactions_cron.export_dir = '$dir'" \
        -c "ALTER DATABASE $DB SET interactions_cron.compression = '$compression'"
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "TRUNCATE interactions_cron.export_checkpoints"

    log "exporting in batches of $batch_size (compression: $compression)"
    export_until_caught_up "$DB" "$batch_size"
    local files
    files=$(find "$dir/exports" -name "*.$extension" | wc -l)
    echo "files: $files *.$extension"
    [ "$(find "$dir/exports" -type f ! -name "*.$extension" | wc -l)" = 0 ] || die "files of another kind were written"

    log "reading back with DuckDB"
    local findings
    findings=$(node "$REPO_ROOT/test/duckdb/readback.mjs" "$dir" "$CSV" "$extension") \
        || die "DuckDB read-back checks failed: $findings"
    echo "duckdb: $findings"
    [ "$(node -e 'console.log(JSON.parse(process.argv[1]).files)' "$findings")" = "$files" ] \
        || die "DuckDB did not read every *.$extension file ($files written)"

    log "comparing every column with the source table"
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL
CREATE TEMP TABLE readback (LIKE interaction_history);
\\copy readback FROM '$CSV' WITH (FORMAT csv, HEADER true)
DO \$\$
DECLARE
    source_rows bigint := (SELECT count(*) FROM interaction_history);
    missing bigint := (SELECT count(*) FROM (TABLE interaction_history EXCEPT ALL TABLE readback) x);
    extra bigint := (SELECT count(*) FROM (TABLE readback EXCEPT ALL TABLE interaction_history) x);
BEGIN
    RAISE NOTICE 'source rows %, rows differing: % missing, % extra', source_rows, missing, extra;
    IF missing <> 0 OR extra <> 0 OR (SELECT count(*) FROM readback) <> source_rows THEN
        RAISE EXCEPTION 'read-back differs from the source table';
    END IF;
END
\$\$;
SQL
    echo "duckdb read-back ($compression): every row and column round-trips"
}

# gzip_members FILE prints how many gzip members FILE holds.
gzip_members() {
    python3 - "$1" <<'PY'
import sys, zlib
data, members = open(sys.argv[1], 'rb').read(), 0
while data:
    member = zlib.decompressobj(31)
    member.decompress(data)
    if not member.eof:
        sys.exit('truncated gzip member')
    members, data = members + 1, member.unused_data
print(members)
PY
}

export_and_read_back none
export_and_read_back gzip
# In batches of 20,000, the bulk tenant's day is one file of 4 MB of rows:
# gzip files are members of 1 MB of rows each (src/compression.c), which
# DuckDB must read as one stream.
export_and_read_back gzip 20000
bulk_file=$(find "$CLUSTER_DIR/readback_gzip_20000/exports/bulk" -name '*.json.gz')
[ "$(wc -l <<<"$bulk_file")" = 1 ] || die "the bulk tenant's rows are not in one gzip file: $bulk_file"
members=$(gzip_members "$bulk_file")
[ "$members" -ge 3 ] || die "the bulk tenant's gzip file holds $members member(s), not one a megabyte"
echo "gzip: the bulk tenant's file holds $members members"
export_and_read_back zstd

# The same on a Prisma-style schema (test/sql/prisma_schema.sql) mapped by
# settings: text ids whose order is not insertion order, timestamp(3) UTC
# wall-clock times written by sessions in UTC, ties of 300 rows per
# createdAt, read back as UTC instants in UTC day partitions.
PRISMA_DB=interactions_cron_readback_prisma
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $PRISMA_DB" -c "CREATE DATABASE $PRISMA_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$PRISMA_DB" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION interactions_cron" -f "$REPO_ROOT/test/sql/prisma_schema.sql" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$PRISMA_DB" <<'SQL'
SET TimeZone = 'UTC';
INSERT INTO app."Tenant" (id, "displayName") VALUES ('clxq1', 'Q'), ('clxa2', 'A'), ('clxz3', 'Z');
INSERT INTO app."Interaction" (id, "tenantId", channel, payload, "createdAt", "updatedAt")
SELECT 'ck' || md5(t.id || g), t.id, (ARRAY['email', 'sms'])[1 + g % 2],
       CASE WHEN g % 5 = 0 THEN NULL ELSE jsonb_build_object('g', g) END,
       timestamp '2026-03-30 23:00:00' + (g / 300) * interval '7 minutes 0.125 seconds',
       timestamp '2026-04-01 00:00:00.5'
FROM app."Tenant" t, generate_series(1, 3000) g;
SQL
prisma_dir="$CLUSTER_DIR/readback_prisma"
psql -X -q -v ON_ERROR_STOP=1 -d postgres \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.export_dir = '$prisma_dir'" \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.tenants_table = 'app.\"Tenant\"'" \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.tenant_name_column = 'displayName'" \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.active_tenants_filter = 'status = ''ACTIVE'' AND \"deletedAt\" IS NULL'" \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.history_table = 'app.\"Interaction\"'" \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.history_tenant_column = 'tenantId'" \
    -c "ALTER DATABASE $PRISMA_DB SET interactions_cron.history_created_column = 'createdAt'" \
    -c "ALTER DATABASE $PRISMA_DB SET TimeZone = 'America/Los_Angeles'"
log "exporting the Prisma-style schema in batches of 700"
export_until_caught_up "$PRISMA_DB"
log "reading the Prisma-style export back with DuckDB"
findings=$(node "$REPO_ROOT/test/duckdb/readback.mjs" "$prisma_dir" "$CSV" json prisma) \
    || die "DuckDB read-back checks failed: $findings"
echo "duckdb (prisma): $findings"
psql -X -q -v ON_ERROR_STOP=1 -d "$PRISMA_DB" <<SQL
CREATE TEMP TABLE readback (id text, "tenantId" text, channel text, payload jsonb,
                            "createdAt" timestamptz, "updatedAt" timestamptz);
\\copy readback FROM '$CSV' WITH (FORMAT csv, HEADER true)
DO \$\$
DECLARE
    source_rows bigint := (SELECT count(*) FROM app."Interaction");
    differing bigint := (SELECT count(*) FROM (
        (SELECT id, "tenantId", channel, payload, "createdAt" AT TIME ZONE 'UTC', "updatedAt" AT TIME ZONE 'UTC'
         FROM app."Interaction" EXCEPT ALL TABLE readback)
        UNION ALL
        (TABLE readback EXCEPT ALL
         SELECT id, "tenantId", channel, payload, "createdAt" AT TIME ZONE 'UTC', "updatedAt" AT TIME ZONE 'UTC'
         FROM app."Interaction")) x);
BEGIN
    RAISE NOTICE 'source rows %, rows differing %', source_rows, differing;
    IF differing <> 0 OR (SELECT count(*) FROM readback) <> source_rows THEN
        RAISE EXCEPTION 'the Prisma-style read-back differs from the source table';
    END IF;
END
\$\$;
SQL
echo "duckdb read-back (prisma): every row and column round-trips, times as UTC instants"
