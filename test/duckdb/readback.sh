#!/usr/bin/env bash
# DuckDB read-back: export a tricky data set in many small batches, read
# every file back with DuckDB, and compare each column with the source rows.
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
SQL

# export_and_read_back COMPRESSION: exports everything again into its own
# directory, reads it back with DuckDB and compares every column.
export_and_read_back() {
    local compression=$1 extension=json
    local dir="$CLUSTER_DIR/readback_$compression"
    [ "$compression" = gzip ] && extension=json.gz
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER DATABASE $DB SET interactions_cron.export_dir = '$dir'" \
        -c "ALTER DATABASE $DB SET interactions_cron.compression = '$compression'"
    psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "TRUNCATE interactions_cron.export_checkpoints"

    log "exporting in batches of 700 (compression: $compression)"
    local runs=0 exported
    while :; do
        exported=$(psql -X -At -v ON_ERROR_STOP=1 -d "$DB" \
            -c "SELECT (interactions_cron.export_interactions(batch_size => 700)->>'totalExported')")
        runs=$((runs + 1))
        [ "$exported" = 0 ] && break
        [ "$runs" -lt 100 ] || die "the export did not catch up"
    done
    echo "export runs: $runs; files: $(find "$dir/exports" -name "*.$extension" | wc -l) *.$extension"

    log "reading back with DuckDB"
    local findings
    findings=$(node "$REPO_ROOT/test/duckdb/readback.mjs" "$dir" "$CSV" "$extension") \
        || die "DuckDB read-back checks failed: $findings"
    echo "duckdb: $findings"

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

export_and_read_back none
export_and_read_back gzip
