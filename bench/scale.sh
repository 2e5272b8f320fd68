#!/usr/bin/env bash
# Sticky routing as the work grows, with abtest's default settings (issue #12): one
# statement routes N new users of a new experiment, then the same N users again, for
# each N of the sweep, on a fresh cluster where two other sticky experiments already
# hold 100,000 users each. Each cost is per user and against hashtext() over the same
# N in the same run, beside the floor under any sticky router: hashtext's work plus one
# random read in a region of the cache's size (bench/read_floor.c), over the same users.
# Usage: bash bench/scale.sh
#   SCALE_SIZES   the sweep (default "10000 100000 1000000 5000000")
#   SCALE_RUNS    timed runs of the returning users and of hashtext at least, median (default 3)
#   SCALE_NEW_CALLS, SCALE_RETURNING_CALLS  a small size is run until it made about this many
#                 calls (defaults 200000 and 1000000; at most 20 new-user, 100 returning runs)
#   SCALE_PGBENCH_SECONDS  pgbench over 1M random returning users, in 3 rounds (default 30; 0 skips),
#                 with the simple protocol and then with prepared statements.
#                 Each round connects anew, and a new backend first maps the cache page by page.
# Writes bench/results-scale.md. Never fails on slow numbers; exits non-zero only on errors.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SIZES="${SCALE_SIZES:-10000 100000 1000000 5000000}"
RUNS="${SCALE_RUNS:-3}"
# Calls each size makes at least (as far as the caps of 20 new-user and 100 returning runs allow).
NEW_CALLS="${SCALE_NEW_CALLS:-200000}"
RETURNING_CALLS="${SCALE_RETURNING_CALLS:-1000000}"
PGBENCH_SECONDS="${SCALE_PGBENCH_SECONDS:-30}"
RESULTS="$ABTEST_REPO/bench/results-scale.md"
for n in $SIZES; do abtest_require_positive_ints SCALE_SIZES "$n"; done
abtest_require_positive_ints SCALE_RUNS "$RUNS" SCALE_NEW_CALLS "$NEW_CALLS" SCALE_RETURNING_CALLS "$RETURNING_CALLS"

abtest_bench_build

abtest_header "bench cluster (abtest's defaults)"
# Only jit = off (its compile time is noise unrelated to per-call cost) and fsync = on
# (the test clusters turn it off; a real server pays for its WAL flushes).
abtest_start_cluster "jit = off" "fsync = on"
trap 'abtest_stop_cluster' EXIT

abtest_psql -q <<'SQL'
CREATE EXTENSION abtest;
CREATE FUNCTION bench_wait_for_flush() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WHILE (SELECT queued > flushed FROM abtest.sticky_cache_stats) LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
-- Two experiments already running, 100,000 sticky users each.
SELECT ab_create_experiment('other_' || k, ARRAY['control','treatment']) FROM generate_series(1, 2) k;
SELECT ab_start('other_' || k) FROM generate_series(1, 2) k;
SELECT count(ab_route_user('other_' || k, 'o' || i)) FROM generate_series(1, 2) k, generate_series(1, 100000) i;
SELECT bench_wait_for_flush();
SQL

# The floor (bench/read_floor.c), built against the server's headers; its region is
# the size of the sticky cache.
floor_lib="$ABTEST_TMP/read_floor.so"
cc -O2 -Wall -fPIC -shared -I"$("$ABTEST_PG_CONFIG" --includedir-server)" -o "$floor_lib" "$ABTEST_REPO/bench/read_floor.c"
chmod a+rx "$floor_lib"
abtest_psql -q -c "CREATE FUNCTION bench_read_floor(text, integer) RETURNS integer AS '${floor_lib%.so}', 'bench_read_floor' LANGUAGE C STRICT"
floor_mb="$(abtest_psql -At -c "SELECT round(size / 1048576.0)::int FROM pg_shmem_allocations WHERE name = 'abtest sticky cache'")"

settings="$(abtest_psql -At -c "SELECT string_agg(name || ' = ' || setting || coalesce(' ' || unit, ''), ', ' ORDER BY name)
    FROM pg_settings WHERE name IN ('abtest.sticky_cache_size', 'abtest.assignment_queue_size', 'abtest.max_databases',
                                    'abtest.flush_interval', 'shared_buffers')")"

# Everything runs in one session, as through an application's pooled connection: a
# new backend first maps the shared memory it touches, page by page (a few µs per
# 4 kB page of the 40 MB cache), which would swamp the small sizes of the sweep.
# The session first routes the 100,000 returning users of one of the other
# experiments, untimed: that maps nearly every page of the cache, once.
script="$ABTEST_TMP/scale.sql"
# The flush worker purges a deleted experiment's log rows after the commit, on the
# other core: the next timed statements wait for it. Each poll is a statement of its
# own (a transaction open across the wait would be one the purge waits for), so the
# loop is unrolled: at most 30 × 0.1 s, and no wait once the purge is done.
wait_for_purge() {
    for (( poll = 0; poll < 30; poll++ )); do
        echo "SELECT pg_sleep(0.1) WHERE EXISTS (SELECT FROM abtest.deleted_experiments);"
    done
}
{
echo "SELECT count(ab_route_user('other_1', 'o' || i)) FROM generate_series(1, 100000) i;"
echo "SELECT bench_read_floor('map the region', $floor_mb);"
for n in $SIZES; do
    e="scale_$n"
    # A small size is a statement of a few ms, which the machine's other work moves by
    # ±40%: it is measured more often, so that every size routes about as many calls.
    # New users are new only once, so each extra new-user run has an experiment of its
    # own, deleted after it (its cache entries then free); the last one stays for the
    # returning runs.
    new_runs=$(( (NEW_CALLS + n - 1) / n )); (( new_runs > 20 )) && new_runs=20; (( new_runs < 1 )) && new_runs=1
    returning_runs=$(( (RETURNING_CALLS + n - 1) / n )); (( returning_runs > 100 )) && returning_runs=100
    (( returning_runs < RUNS )) && returning_runs=$RUNS
    echo "\\echo @stats $n before"
    echo "SELECT log_lookups || ' ' || evictions || ' ' || uncached_writes || ' ' || overflow_writes FROM abtest.sticky_cache_stats;"
    for (( run = 1; run <= new_runs; run++ )); do
        ex="$e"; (( run < new_runs )) && ex="${e}_$run"
        echo "SELECT ab_create_experiment('$ex', ARRAY['control','treatment']); SELECT ab_start('$ex');"
        echo "\\echo @hash $n"
        echo "EXPLAIN (ANALYZE, TIMING OFF) SELECT count(hashtext(i::text)) FROM generate_series(1, $n) i;"
        echo "\\echo @new $n"
        echo "EXPLAIN (ANALYZE, TIMING OFF) SELECT count(ab_route_user('$ex', i::text)) FROM generate_series(1, $n) i;"
        if (( run < new_runs )); then
            echo "SELECT bench_wait_for_flush(); SELECT ab_delete_experiment('$ex');"
            wait_for_purge
        fi
    done
    # The purges' dead rows are vacuumed now, untimed, rather than by autovacuum
    # during the returning runs.
    (( new_runs > 1 )) && echo "VACUUM abtest.assignments;"
    echo "\\echo @stats $n new"
    echo "SELECT log_lookups || ' ' || evictions || ' ' || uncached_writes || ' ' || overflow_writes FROM abtest.sticky_cache_stats;"
    echo "SELECT bench_wait_for_flush();"
    for (( run = 1; run <= returning_runs; run++ )); do
        echo "\\echo @hash $n"
        echo "EXPLAIN (ANALYZE, TIMING OFF) SELECT count(hashtext(i::text)) FROM generate_series(1, $n) i;"
        echo "\\echo @floor $n"
        echo "EXPLAIN (ANALYZE, TIMING OFF) SELECT count(bench_read_floor(i::text, $floor_mb)) FROM generate_series(1, $n) i;"
        echo "\\echo @returning $n"
        echo "EXPLAIN (ANALYZE, TIMING OFF) SELECT count(ab_route_user('$e', i::text)) FROM generate_series(1, $n) i;"
    done
    echo "\\echo @stats $n returning"
    echo "SELECT log_lookups || ' ' || evictions || ' ' || uncached_writes || ' ' || overflow_writes FROM abtest.sticky_cache_stats;"
done
} >"$script"
chmod a+r "$script"
out="$ABTEST_TMP/scale.out"
abtest_psql -At -f "$script" | tee "$out" | grep -E '^@|^Execution Time' | paste - - | sed 's/\t/  /'

# "kind n value" lines: times in ms, and the stats as four numbers.
parsed="$(awk '
    /^@stats/ {stats = $2 " " $3; kind = ""; next}
    /^@/ {kind = substr($1, 2); n = $2; stats = ""; next}
    /^Execution Time:/ && kind != "" {print kind, n, $3; kind = ""; next}
    stats != "" && NF == 4 {print "stats", stats, $0; stats = ""}
' "$out")"
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
values() { awk -v k="$1" -v n="$2" '$1 == k && $2 == n {print $3}' <<<"$parsed"; }
stat() { awk -v n="$1" -v w="$2" -v f="$3" '$1 == "stats" && $2 == n && $3 == w {print $(3 + f)}' <<<"$parsed"; }
per_user_ns() { awk -v ms="$1" -v n="$2" 'BEGIN {printf "%.0f", ms * 1e6 / n}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

capacity="$(abtest_psql -At -c 'SELECT capacity FROM abtest.sticky_cache_stats')"
rows=()
new_ratios=()
returning_ratios=()
new_ns=()
returning_ns=()
new_own_ns=()
returning_own_ns=()
floor_ns=()
for n in $SIZES; do
    hash_ms="$(values hash "$n" | median)"
    floor_ms="$(values floor "$n" | median)"
    floor_ratio="$(ratio "$floor_ms" "$hash_ms")"
    new_ms="$(values new "$n" | median)"
    returning_ms="$(values returning "$n" | median)"
    new_ratio="$(ratio "$new_ms" "$hash_ms")"
    returning_ratio="$(ratio "$returning_ms" "$hash_ms")"
    # Flatness counts the sizes that fit the cache beside the other experiments' users.
    if (( n + 200000 <= capacity )); then
        new_ratios+=("$new_ratio")
        returning_ratios+=("$returning_ratio")
        new_ns+=("$(per_user_ns "$new_ms" "$n")")
        returning_ns+=("$(per_user_ns "$returning_ms" "$n")")
        floor_ns+=("$(per_user_ns "$floor_ms" "$n")")
        # The call's own cost: what it adds to hashtext's row (the series, its spill to a
        # temporary file above work_mem, the count), which varies with N by itself.
        new_own_ns+=("$(per_user_ns "$(awk -v a="$new_ms" -v b="$hash_ms" 'BEGIN {print a - b}')" "$n")")
        returning_own_ns+=("$(per_user_ns "$(awk -v a="$returning_ms" -v b="$hash_ms" 'BEGIN {print a - b}')" "$n")")
    fi
    delta() { echo $(( $(stat "$n" "$2" "$3") - $(stat "$n" "$1" "$3") )); }
    rows+=("| $n | $(per_user_ns "$hash_ms" "$n") | $(per_user_ns "$floor_ms" "$n") ($floor_ratio ×) | $(per_user_ns "$new_ms" "$n") ($new_ratio ×) | $(per_user_ns "$returning_ms" "$n") ($returning_ratio ×) | $(delta before new 1) / $(delta before new 2) / $(delta before new 3) / $(delta before new 4) | $(delta new returning 1) / $(delta new returning 2) / $(delta new returning 3) / $(delta new returning 4) |")
done

# Flatness: the largest per-user cost against the smallest, over the sweep.
spread() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {printf "%.2f", a[NR] / a[1]}'; }
spread_line="no size of the sweep fits the cache"
if (( ${#new_ns[@]} > 0 )); then
    spread_line="Over the sizes that fit the cache ($capacity entries, with the other experiments' 200,000 users), the largest per-user cost over the smallest: new users $(spread "${new_ns[@]}") in ns ($(spread "${new_ratios[@]}") in × hashtext), returning users $(spread "${returning_ns[@]}") in ns ($(spread "${returning_ratios[@]}") in × hashtext); target ≤ 1.5. The floor's own: $(spread "${floor_ns[@]}") in ns. The same over the cost beyond hashtext's (ns per user: new ${new_own_ns[*]}, returning ${returning_own_ns[*]}): new $(spread "${new_own_ns[@]}"), returning $(spread "${returning_own_ns[@]}")"
fi

tps_line="pgbench skipped."
if [ "$PGBENCH_SECONDS" != 0 ]; then
    abtest_header "pgbench, 2 clients, $PGBENCH_SECONDS s each, random users of 1M"
    abtest_psql -q -c "SELECT ab_create_experiment('random', ARRAY['control','treatment'])" -c "SELECT ab_start('random')" \
        -c "SELECT count(ab_route_user('random', i::text)) FROM generate_series(1, 1000000) i" \
        -c "SELECT bench_wait_for_flush()" >/dev/null
    dir="$ABTEST_TMP/pgbench"
    mkdir -p "$dir"
    printf '\\set uid random(1, 1000000)\nSELECT hashtext(:uid::text);\n' >"$dir/hashtext.sql"
    printf '\\set uid random(1, 1000000)\nSELECT ab_route_user('"'"'random'"'"', :uid::text);\n' >"$dir/route.sql"
    chmod -R a+rX "$dir"
    tps() {
        abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -M "$3" -c 2 -j 2 -T "$2" -f "$1" postgres 2>&1 |
            sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
    }
    # Three alternating rounds, a third of the time each: the ratio of each round, their
    # median reported, so that a change in the machine's load between two long runs does
    # not pass for a difference. The simple protocol (pgbench's default: every statement
    # parsed and planned) is the target's; the prepared one is how psycopg and JDBC run a
    # statement from its fifth execution on.
    round_seconds=$(( (PGBENCH_SECONDS + 2) / 3 ))
    tps_line=""
    for mode in simple prepared; do
        round_ratios=()
        tps_rounds=""
        for round in 1 2 3; do
            tps_hash="$(tps "$dir/hashtext.sql" "$round_seconds" "$mode")"
            tps_route="$(tps "$dir/route.sql" "$round_seconds" "$mode")"
            round_ratios+=("$(ratio "$tps_route" "$tps_hash")")
            tps_rounds="$tps_rounds${tps_rounds:+; }$(printf '%.0f' "$tps_route") / $(printf '%.0f' "$tps_hash")"
        done
        tps_median="$(printf '%s\n' "${round_ratios[@]}" | median)"
        if [ "$mode" = simple ]; then
            line="pgbench, 2 clients, 3 alternating rounds of $round_seconds s, random returning users of 1M: ab_route_user / hashtext tps $tps_rounds; the rounds' ratios ${round_ratios[*]}, median $tps_median of hashtext (target ≥ 0.95)."
        else
            line="The same with prepared statements (pgbench -M prepared): tps $tps_rounds; the rounds' ratios ${round_ratios[*]}, median $tps_median of hashtext."
        fi
        echo "  $line"
        tps_line="$tps_line${tps_line:+

}$line"
    done
fi

pgver="$(abtest_psql -At -c 'SHOW server_version')"
{
    echo "# Sticky routing as the work grows (bench/scale.sh)"
    echo
    echo "PostgreSQL $pgver, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'). A fresh cluster with abtest's defaults"
    echo "($settings), jit = off, fsync = on; two other sticky experiments hold 100,000 users each."
    echo "One statement routes N new users of a new experiment, then the same N users again, each per user and against"
    echo "hashtext() over the same N; the median of the runs. A size is run until it made about $NEW_CALLS new-user and"
    echo "$RETURNING_CALLS returning calls (each new-user run with an experiment of its own, deleted after it; at most 20"
    echo "new-user and 100 returning runs, at least $RUNS returning ones), so the small sizes are measured as often as the"
    echo "large ones; the cache statistics are the sums over a size's runs. The floor (bench/read_floor.c) is hashtext's"
    echo "work plus one random read in a region of the cache's size ($floor_mb MB), chosen by the same user's hash: what"
    echo "any sticky router must at least do for a returning user; it runs beside each returning run."
    echo
    echo "| N | hashtext, ns per user | floor, ns (× hashtext) | new users, ns (× hashtext) | returning users, ns (× hashtext) | new: log lookups / evictions / uncached writes / overflow writes | returning (all runs): the same |"
    echo "|---:|---:|---:|---:|---:|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "$spread_line."
    echo
    echo "$tps_line"
} | tee "$RESULTS"
