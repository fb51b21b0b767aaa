#!/usr/bin/env bash
# The installed library exports only the entry points PostgreSQL calls:
# _PG_init, the module magic, each SQL function and its info function, and
# the background workers' main functions, all read from the sources.  Any
# other global symbol could clash with another extension's, since
# PostgreSQL 15 loads libraries with RTLD_GLOBAL.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/common.sh"

library="$(pg_config --pkglibdir)/interactions_cron.so"
expected=$(
    {
        echo _PG_init
        echo Pg_magic_func
        sed -n 's/^PG_FUNCTION_INFO_V1(\([A-Za-z0-9_]*\));/\1\npg_finfo_\1/p' "$REPO_ROOT"/src/*.c
        sed -n 's/.*DescribeDynamicWorker(&worker, "\([A-Za-z0-9_]*\)".*/\1/p' "$REPO_ROOT"/src/*.c
    } | sort -u)
exported=$(nm -D --defined-only "$library" | awk '{print $3}' | sort -u)

if [ "$exported" != "$expected" ]; then
    echo "exported symbols differ from the entry points:"
    diff <(echo "$expected") <(echo "$exported") || true
    exit 1
fi
echo "ok: $(echo "$exported" | wc -l) symbols exported, each an entry point"
