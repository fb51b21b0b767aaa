# Benchmark section, sourced by scripts/bench.sh at its end (it uses sql,
# now_ns, elapsed_ms, median, log and die from there):
# interactions_cron.cleanup() against the two DELETE statements a DBA would
# write for the same retention, on identical data, in interleaved rounds.
#
# The data: BENCH_CLEANUP_ROWS rows to delete (default 2,000,000), half
# expired suppressions and half daily summaries older than 365 days, beside
# rows that must stay (suppressions that never expire or expire later, recent
# daily summaries, old weekly and monthly ones).  Before every measurement
# both tables are refilled from a copy, vacuumed and analyzed, and a
# checkpoint is taken, so each side starts from the same state.  Each side
# runs in a fresh session in one transaction (cleanup() is one); their
# deleted row counts must agree (the run dies if not).  Prints the medians
# and the ratio against its target, the ratios of the rounds, and the ratio
# of the backends' CPU time (steadier on a shared machine); it asserts
# nothing about time.

CLEANUP_ROWS=${BENCH_CLEANUP_ROWS:-2000000}
# Five rounds, not REPEAT: a round's ratio moved from 0.74x to 1.19x across
# four runs on the same code, and a round takes about 2 s a side.
CLEANUP_REPEAT=${BENCH_CLEANUP_REPEAT:-5}

log "cleanup() vs the DBA's two DELETEs: $CLEANUP_ROWS rows to delete, $CLEANUP_REPEAT rounds each, interleaved"
# A first call creates the partitions of the coming months, so that no
# measured call does that part of its work while the DELETEs have none.
sql -q -c "SELECT interactions_cron.cleanup() IS NOT NULL" >/dev/null
sql -q <<SQL
CREATE SCHEMA bench_cleanup;
-- Expired suppressions over the past year, plus rows that stay: a tenth
-- never expire, a tenth expire in the coming year.
CREATE TABLE bench_cleanup.suppressions AS
SELECT g AS id, format('tenant_%s', g % 1000) AS tenant_id, 'contact_' || g AS contact_id,
       'unsubscribed' AS reason, now() - interval '2 years' AS created_at,
       CASE WHEN g <= $CLEANUP_ROWS / 2 THEN now() - (g % 525600) * interval '1 minute' - interval '1 second'
            WHEN g % 2 = 0 THEN NULL
            ELSE now() + (g % 525600) * interval '1 minute' + interval '1 day' END AS expires_at
FROM generate_series(1, $CLEANUP_ROWS / 2 + $CLEANUP_ROWS / 10) g;
-- Daily summaries of up to 1,000 days older than 365 days per tenant, plus
-- rows that stay: the last 365 days, and weekly and monthly rows of every age.
CREATE TABLE bench_cleanup.interaction_summaries AS
SELECT row_number() OVER () AS id, tenant_id, period_type, period_start, interactions
FROM (SELECT format('tenant_%s', g / 1000) AS tenant_id, 'daily' AS period_type,
             (now() AT TIME ZONE 'UTC')::date - 366 - g % 1000 AS period_start, g AS interactions
      FROM generate_series(0, $CLEANUP_ROWS - $CLEANUP_ROWS / 2 - 1) g
      UNION ALL
      SELECT format('tenant_%s', t), p, (now() AT TIME ZONE 'UTC')::date - d, t
      FROM generate_series(0, $CLEANUP_ROWS / 20000) t,
           unnest(ARRAY['daily', 'weekly', 'monthly']) p, generate_series(0, 729) d
      WHERE p <> 'daily' OR d <= 365) s;
SQL
read -r kept_suppressions kept_summaries < <(sql -F ' ' -c "
    SELECT (SELECT count(*) FROM bench_cleanup.suppressions WHERE expires_at IS NULL OR expires_at >= now()),
           (SELECT count(*) FROM bench_cleanup.interaction_summaries
             WHERE period_type <> 'daily' OR period_start >= (now() AT TIME ZONE 'UTC')::date - 365)")
echo "rows: $((CLEANUP_ROWS / 2)) expired suppressions and $kept_suppressions that stay;" \
     "$((CLEANUP_ROWS - CLEANUP_ROWS / 2)) old daily summaries and $kept_summaries summaries that stay"

# restore_cleanup_tables: both tables as the copy holds them, vacuumed,
# analyzed and checkpointed.
restore_cleanup_tables() {
    sql -q <<SQL
TRUNCATE public.suppressions, public.interaction_summaries;
INSERT INTO public.suppressions (id, tenant_id, contact_id, reason, created_at, expires_at)
SELECT id, tenant_id, contact_id, reason, created_at, expires_at FROM bench_cleanup.suppressions;
INSERT INTO public.interaction_summaries (id, tenant_id, period_type, period_start, interactions)
SELECT id, tenant_id, period_type, period_start, interactions FROM bench_cleanup.interaction_summaries;
VACUUM ANALYZE public.suppressions, public.interaction_summaries;
CHECKPOINT;
SQL
}

# The CPU time (user and system, in ms) its backend has used so far, from
# Linux's /proc/self/stat (utime and stime, in clock ticks): less disturbed
# than the wall time by other work on a shared machine.
BACKEND_CPU_MS="SELECT (split_part(rest, ' ', 12)::bigint + split_part(rest, ' ', 13)::bigint) * 1000 / $(getconf CLK_TCK)
                FROM (SELECT split_part(pg_catalog.pg_read_file('/proc/self/stat'), ') ', 2) AS rest) s"

# run_timed STATEMENT...: runs the statements in one fresh session and
# prints "<wall ms> <backend CPU ms>", then their output.
run_timed() {
    local started out ms statement statements=()
    for statement in "$BACKEND_CPU_MS" "$@" "$BACKEND_CPU_MS"; do statements+=(-c "$statement"); done
    started=$(now_ns)
    out=$(sql -F ' ' "${statements[@]}")
    ms=$(elapsed_ms "$started")
    echo "$ms $(($(tail -1 <<<"$out") - $(head -1 <<<"$out")))"
    sed '1d;$d' <<<"$out"
}

# run_cleanup_job: prints "<ms> <CPU ms> <suppressions deleted> <summaries deleted>".
run_cleanup_job() {
    run_timed "SELECT r->'cleaned'->>'expiredSuppressions', r->'cleaned'->>'oldDailySummaries'
               FROM interactions_cron.cleanup() r" | paste -s -d ' '
}

# run_dba_deletes: the two DELETEs in one transaction, as cleanup() runs;
# prints "<ms> <CPU ms> <suppressions deleted> <summaries deleted>" (from
# their command tags).
run_dba_deletes() {
    run_timed "BEGIN" "DELETE FROM public.suppressions WHERE expires_at < now()" \
        "DELETE FROM public.interaction_summaries
         WHERE period_type = 'daily' AND period_start < (now() AT TIME ZONE 'UTC')::date - 365" \
        "COMMIT" | awk 'NR == 1 {printf "%s", $0} $1 == "DELETE" {printf " %s", $2} END {print ""}'
}

job_runs=(); dba_runs=(); job_cpu=(); dba_cpu=()
for round in $(seq "$CLEANUP_REPEAT"); do
    restore_cleanup_tables
    read -r job_ms job_cpu_ms job_suppressions job_summaries < <(run_cleanup_job)
    restore_cleanup_tables
    read -r dba_ms dba_cpu_ms dba_suppressions dba_summaries < <(run_dba_deletes)
    [ "$job_suppressions" = "$dba_suppressions" ] && [ "$job_summaries" = "$dba_summaries" ] \
        || die "cleanup() deleted $job_suppressions suppressions and $job_summaries summaries," \
               "the DELETEs $dba_suppressions and $dba_summaries"
    [ $((job_suppressions + job_summaries)) -eq "$CLEANUP_ROWS" ] \
        || die "cleanup() deleted $((job_suppressions + job_summaries)) rows, expected $CLEANUP_ROWS"
    job_runs+=("$job_ms"); dba_runs+=("$dba_ms"); job_cpu+=("$job_cpu_ms"); dba_cpu+=("$dba_cpu_ms")
    echo "round $round: cleanup() $job_ms ms (CPU $job_cpu_ms ms), DELETEs $dba_ms ms (CPU $dba_cpu_ms ms)" \
         "($job_suppressions suppressions, $job_summaries daily summaries each)"
done
job_ms=$(printf '%s\n' "${job_runs[@]}" | median)
dba_ms=$(printf '%s\n' "${dba_runs[@]}" | median)
job_cpu_ms=$(printf '%s\n' "${job_cpu[@]}" | median)
dba_cpu_ms=$(printf '%s\n' "${dba_cpu[@]}" | median)
round_ratios=$(paste <(printf '%s\n' "${job_runs[@]}") <(printf '%s\n' "${dba_runs[@]}") |
    awk '{r = $1 / ($2 < 1 ? 1 : $2); if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r}
         END {printf "%.2f-%.2f", lo, hi}')
sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA bench_cleanup CASCADE" -c "TRUNCATE public.suppressions, public.interaction_summaries"
awk -v rows="$CLEANUP_ROWS" -v rounds="$CLEANUP_REPEAT" -v j="$job_ms" -v d="$dba_ms" -v range="$round_ratios" \
    -v jc="$job_cpu_ms" -v dc="$dba_cpu_ms" 'BEGIN {
    if (j < 1) j = 1; if (d < 1) d = 1; if (jc < 1) jc = 1; if (dc < 1) dc = 1
    printf "\n%d rows deleted; median of %d rounds       %10s %14s %14s\n", rows, rounds, "ms", "rows/s", "backend CPU ms"
    printf "%-40s %10d %14d %14d\n", "interactions_cron.cleanup()", j, rows / (j / 1000), jc
    printf "%-40s %10d %14d %14d\n", "two DELETEs in one transaction", d, rows / (d / 1000), dc
    printf "\n%-40s %10s   %-10s %s\n", "ratio of times", "ratio", "target", "met"
    printf "%-40s %10.2f   %-10s %s\n", "cleanup() / DELETEs (medians)", j / d, "<= 1.10", (j / d <= 1.1 ? "yes" : "no")
    printf "%-40s %10s\n", "cleanup() / DELETEs, round by round", range
    printf "%-40s %10.2f\n", "cleanup() / DELETEs, backend CPU time", jc / dc
}'
