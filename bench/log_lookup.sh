#!/usr/bin/env bash
# What a sticky cache miss costs when the user is in the log (issue #12): the
# smallest cache (abtest.sticky_cache_size = 1024) and LOOKUP_ROWS users already
# logged, so that every returning user misses and is looked up in abtest.assignments.
# Per round, in one session: hashtext over the user ids (the baseline), the returning
# users (a miss and a log lookup each), and 512 users over and over (hits: the same
# routing without the lookup); log_lookups of abtest.sticky_cache_stats counts the
# lookups of each. Then pgbench, one client, a random returning user per transaction
# (each transaction opens what the lookup keeps), against hashtext.
#
# Usage: flock -o /tmp/abtest-install.lock bash bench/log_lookup.sh
#   LOOKUP_ROWS       users logged and routed per query (default 1000000)
#   LOOKUP_RUNS       measured rounds, median reported (default 5; one warm-up round more)
#   LOOKUP_SECONDS    seconds per pgbench run (default 5)
#   LOOKUP_BEFORE     a git ref to compare with (e.g. main): its library is built in a
#                     temporary directory, and every round runs both, alternating the
#                     installed library (and restarting the server) between them
#   LOOKUP_BEFORE_SO  an abtest.so already built from LOOKUP_BEFORE (skips the build)
# Writes bench/results-log-lookup.md. Never fails on slow numbers.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ROWS="${LOOKUP_ROWS:-1000000}"
RUNS="${LOOKUP_RUNS:-5}"
PGBENCH_SECONDS="${LOOKUP_SECONDS:-5}"
BEFORE="${LOOKUP_BEFORE:-}"
RESULTS="$ABTEST_REPO/bench/results-log-lookup.md"
abtest_require_positive_ints ROWS "$ROWS" RUNS "$RUNS" PGBENCH_SECONDS "$PGBENCH_SECONDS"

abtest_bench_build
libs="$(mktemp -d /tmp/abtest-lookup-libs.XXXXXX)"
cleanup_libs() { rm -rf "$libs"; }
trap cleanup_libs EXIT
pkglibdir="$("$ABTEST_PG_CONFIG" --pkglibdir)"
after_label="$(git -C "$ABTEST_REPO" rev-parse --short HEAD)$(git -C "$ABTEST_REPO" diff --quiet HEAD -- src || echo '+changes')"
cp "$ABTEST_REPO/abtest.so" "$libs/after.so"
variants=(after)
labels=("this tree ($after_label)")
if [ -n "$BEFORE" ]; then
    before_label="$BEFORE ($(git -C "$ABTEST_REPO" rev-parse --short "$BEFORE"))"
    if [ -n "${LOOKUP_BEFORE_SO:-}" ]; then
        cp "$LOOKUP_BEFORE_SO" "$libs/before.so"
    else
        abtest_header "build $BEFORE"
        mkdir "$libs/src"
        git -C "$ABTEST_REPO" archive "$BEFORE" | tar -x -C "$libs/src"
        make -C "$libs/src" -j2 PG_CONFIG="$ABTEST_PG_CONFIG" >"$libs/build.log" 2>&1 ||
            { tail -30 "$libs/build.log" >&2; exit 1; }
        cp "$libs/src/abtest.so" "$libs/before.so"
    fi
    variants=(before after)
    labels=("$before_label" "${labels[0]}")
fi

abtest_header "bench cluster"
abtest_start_cluster "jit = off" "shared_buffers = '256MB'" "abtest.sticky_cache_size = 1024" \
    "abtest.max_databases = 1" "max_parallel_workers_per_gather = 0"
trap 'abtest_stop_cluster; cleanup_libs' EXIT

use_library() {  # use_library VARIANT: installs its library and restarts the server on it
    install -m 755 "$libs/$1.so" "$pkglibdir/abtest.so"
    abtest_as_postgres "$ABTEST_PG_BIN/pg_ctl" -D "$ABTEST_PGDATA" -w -l "$ABTEST_TMP/server.log" restart \
        >"$ABTEST_TMP/restart.log" 2>&1 || { tail -20 "$ABTEST_TMP/restart.log" "$ABTEST_TMP/server.log" >&2; return 1; }
}

abtest_header "setup: $ROWS users in the log"
# The rows go in before the first routing call, which then finds the log not empty:
# the cache is incomplete, and every miss looks the log up (as after a restart).
abtest_psql -q >/dev/null <<SQL
CREATE EXTENSION abtest;
CREATE EXTENSION pg_prewarm;
SELECT ab_create_experiment('e', ARRAY['control', 'treatment'], ARRAY[50, 50]);
SELECT ab_start('e');
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT id, i::text, CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END, now()
  FROM abtest.experiments, generate_series(1, $ROWS) i WHERE name = 'e';
VACUUM ANALYZE abtest.assignments;
CHECKPOINT;
SQL
abtest_psql -Atc "SELECT pg_size_pretty(pg_relation_size('abtest.assignments')) || ' table, ' ||
    pg_size_pretty(pg_relation_size('abtest.assignments_pkey')) || ' primary key'"

work="$ABTEST_TMP/lookup-bench"
mkdir -p "$work"
# One session per round and variant: prewarmed buffers, a short warm-up, then the
# three queries, each between two readings of log_lookups.
cat >"$work/round.sql" <<SQL
\\o /dev/null
SELECT pg_prewarm('abtest.assignments'), pg_prewarm('abtest.assignments_pkey');
SELECT count(ab_route_user('e', i::text)) FROM generate_series($ROWS - 20000, $ROWS) i;
\\o
SELECT 'lookups ' || log_lookups FROM abtest.sticky_cache_stats;
EXPLAIN (ANALYZE, TIMING OFF) SELECT count(hashtext(i::text)) FROM generate_series(1, $ROWS) i;
SELECT 'lookups ' || log_lookups FROM abtest.sticky_cache_stats;
EXPLAIN (ANALYZE, TIMING OFF) SELECT count(ab_route_user('e', i::text)) FROM generate_series(1, $ROWS) i;
SELECT 'lookups ' || log_lookups FROM abtest.sticky_cache_stats;
EXPLAIN (ANALYZE, TIMING OFF) SELECT count(ab_route_user('e', (1 + i % 512)::text)) FROM generate_series(1, $ROWS) i;
SELECT 'lookups ' || log_lookups FROM abtest.sticky_cache_stats;
SQL
printf '\\set uid random(1, %d)\nSELECT hashtext(:uid::text);\n' "$ROWS" >"$work/hashtext.sql"
printf '\\set uid random(1, %d)\nSELECT ab_route_user('"'"'e'"'"', :uid::text);\n' "$ROWS" >"$work/route.sql"
chmod -R a+rX "$work"
tps() {
    abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 1 -j 1 -T "$PGBENCH_SECONDS" -f "$1" postgres 2>&1 |
        sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}

# results: one line per measured round and variant:
#   variant hashtext_ms miss_ms miss_lookups hit_ms hit_lookups tps_hashtext tps_route
results="$work/results"
: >"$results"
for (( run = 0; run <= RUNS; run++ )); do
    order=("${variants[@]}")
    if (( run % 2 == 1 && ${#variants[@]} == 2 )); then order=(after before); fi
    for variant in "${order[@]}"; do
        if [ "${#variants[@]}" -gt 1 ]; then use_library "$variant"; fi
        mapfile -t out < <(abtest_psql -At -f "$work/round.sql" |
            sed -nE 's/^Execution Time: ([0-9.]+) ms$/\1/p; s/^lookups ([0-9]+)$/\1/p')
        if [ "${#out[@]}" -ne 7 ]; then
            echo "bench: round $run ($variant): expected 7 readings, got ${#out[@]}: ${out[*]}" >&2
            exit 1
        fi
        # out: lookups, hashtext ms, lookups, miss ms, lookups, hit ms, lookups
        miss_lookups=$(( out[4] - out[2] ))
        hit_lookups=$(( out[6] - out[4] ))
        tps_hash="$(tps "$work/hashtext.sql")"
        tps_route="$(tps "$work/route.sql")"
        printf '  round %d %-7s hashtext %9s ms  misses %9s ms (%d lookups)  hits %9s ms (%d lookups)  pgbench %s / %s tps\n' \
            "$run" "$variant" "${out[1]}" "${out[3]}" "$miss_lookups" "${out[5]}" "$hit_lookups" "$tps_hash" "$tps_route"
        # Derived per round (the load of the machine changes between rounds, not within
        # one): misses / hashtext, µs per miss, µs per lookup, µs per pgbench transaction.
        derived="$(awk -v h="${out[1]}" -v m="${out[3]}" -v mn="$miss_lookups" -v t="${out[5]}" -v tn="$hit_lookups" \
            -v th="$tps_hash" -v tr="$tps_route" 'BEGIN {
                printf "%.2f %.3f %.3f %.1f", m / h, (m - h) * 1000 / mn, (m - t) * 1000 / (mn - tn), 1e6 / tr - 1e6 / th
            }')"
        if [ "$run" -gt 0 ]; then
            echo "$variant ${out[1]} ${out[3]} $miss_lookups ${out[5]} $hit_lookups $tps_hash $tps_route $derived" >>"$results"
        fi
    done
done

median_of() {  # median_of VARIANT COLUMN
    awk -v v="$1" -v c="$2" '$1 == v {print $c}' "$results" | sort -g |
        awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
pgver="$(abtest_psql -At -c 'SHOW server_version')"
cpu="$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)"
min_of() {  # min_of VARIANT COLUMN
    awk -v v="$1" -v c="$2" '$1 == v {print $c}' "$results" | sort -g | head -n1
}
rows_md=""
summary=""
for i in "${!variants[@]}"; do
    v="${variants[$i]}"
    row="| ${labels[$i]}"
    for c in 2 3 4 5 6 7 8 9 10 11 12; do row+=" | $(median_of "$v" "$c")"; done
    rows_md+="$row | $(min_of "$v" 11) |"$'\n'
    summary+="${labels[$i]}: $(median_of "$v" 11) µs per lookup (median; best round $(min_of "$v" 11)), $(median_of "$v" 10) µs per miss over hashtext, misses / hashtext $(median_of "$v" 9)"$'\n'
done

table="$(
    echo "# Sticky cache misses: the log lookup"
    echo
    echo "bench/log_lookup.sh: PostgreSQL $pgver, ${cpu:-unknown CPU}, $(nproc) cores (shared with other work:"
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end); $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "abtest.sticky_cache_size = 1024 (the minimum), $ROWS users in abtest.assignments, jit = off."
    echo "Median of $RUNS rounds (after a warm-up round); each round runs every variant in its own session on"
    echo "prewarmed buffers$([ "${#variants[@]}" -gt 1 ] && echo ', the variants alternating (installed library swapped, server restarted)')."
    echo
    echo "- hashtext: \`SELECT count(hashtext(i::text)) FROM generate_series(1, $ROWS) i\`"
    echo "- misses: the same users routed, \`count(ab_route_user('e', i::text))\`: every call misses the cache"
    echo "  and looks the user up in the log (lookups: log_lookups of abtest.sticky_cache_stats)"
    echo "- hits: \`count(ab_route_user('e', (1 + i % 512)::text))\`, 512 users over and over: the same calls"
    echo "  without the lookup"
    echo "- µs per miss = (misses - hashtext) / lookups: all of a returning user's routing call beyond hashtext;"
    echo "  µs per lookup = (misses - hits) / (their difference in lookups): the lookup alone"
    echo "- pgbench: one client, \`SELECT ab_route_user('e', :uid::text)\` for a random logged user per"
    echo "  transaction (a miss each, and the lookup's per-transaction opening) against \`SELECT hashtext(:uid::text)\`;"
    echo "  µs per transaction = 1e6/tps(route) - 1e6/tps(hashtext)"
    echo
    echo "Every column is the median over the rounds of that round's figure (the ratios and µs are computed"
    echo "per round, then their median taken); the last column is the best round's µs per lookup."
    echo
    echo "| library | hashtext ms | misses ms | lookups | hits ms | lookups in hits | pgbench hashtext tps | pgbench route tps | misses / hashtext | µs per miss | µs per lookup | µs per transaction | µs per lookup, best round |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s' "$rows_md"
    echo
    echo "Rounds (variant, hashtext ms, misses ms, lookups, hits ms, lookups, pgbench tps hashtext, route;"
    echo "misses / hashtext, µs per miss, µs per lookup, µs per transaction):"
    echo
    sed 's/^/    /' "$results"
)"
abtest_header "results"
echo "$table"
echo "$table" >"$RESULTS"
printf '%s' "$summary"
abtest_log "written to $RESULTS"
