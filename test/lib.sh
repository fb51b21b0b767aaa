# Shared helpers of the shell suites (sourced, not run): the scripts' common
# helpers, plus sql (psql on the suite's $DB, unaligned, stopping at the
# first error) and expect (one named check of a value).

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"

# sql runs psql on the suite's database ($DB) with the given arguments.
sql() { psql -X -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# expect WHAT ACTUAL EXPECTED: prints "ok: WHAT", or dies naming both values.
expect() {
    local what=$1 actual=$2 expected=$3
    [ "$actual" = "$expected" ] || die "$what: expected '$expected', got '$actual'"
    echo "ok: $what"
}
