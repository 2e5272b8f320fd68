#!/usr/bin/env bash
# Benchmark ab_route_user against hashtext() and a hand-written PL/pgSQL router, and
# ab_record_query against hashtext() and a plain INSERT.
# Usage: bash bench/run.sh
#   BENCH_ROWS          rows per query (default 1000000)
#   BENCH_PLPGSQL_ROWS  rows for the slow PL/pgSQL router (default BENCH_ROWS/10;
#                       its time is scaled up to BENCH_ROWS)
#   BENCH_RUNS          timed runs per query, median reported (default 5)
# Prints a markdown table and writes it to bench/results.md. Never fails on
# slow numbers; exits non-zero only on errors.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-5}"
PL_ROWS="${BENCH_PLPGSQL_ROWS:-$(( ROWS / 10 > 0 ? ROWS / 10 : 1 ))}"
RESULTS="$ABTEST_REPO/bench/results.md"
for v in ROWS RUNS PL_ROWS; do
    if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
        echo "bench: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
done

abtest_header "dependencies"
abtest_ensure_deps
abtest_header "build + install"
abtest_build_install

abtest_header "bench cluster"
# JIT off: its compile time would add noise unrelated to per-call cost.
# A cache and queue big enough for a round of 1M new users at once (see README).
# fsync on (the test clusters turn it off): the INSERT baseline must pay for its WAL
# flush as it does on a real server.
abtest_start_cluster "jit = off" "shared_buffers = '256MB'" "fsync = on" \
    "abtest.sticky_cache_size = 4194304" "abtest.assignment_queue_size = '256MB'"

abtest_header "setup"
abtest_psql -q <<'SQL'
CREATE EXTENSION abtest;
SELECT ab_create_experiment('e', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_start('e');
SELECT ab_create_experiment('loose', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('loose', sticky => false);
SELECT ab_start('loose');
-- Waits until the flush worker has written everything queued, so that it does not
-- compete with the next measurement.
CREATE FUNCTION bench_wait_for_flush() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WHILE (SELECT queued > flushed FROM abtest.sticky_cache_stats) LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SQL
abtest_psql -q <"$ABTEST_REPO/bench/plpgsql_router.sql"
# What an application would write instead of ab_record_query: one row per outcome.
abtest_psql -q -c "CREATE TABLE bench_events (id bigserial PRIMARY KEY, experiment text, branch text,
    latency_ms float8, success bool, recorded_at timestamptz DEFAULT now())"

# Execution time (ms) of one statement, from EXPLAIN ANALYZE without per-node
# timing: excludes connection start-up and planning.
exec_ms() {
    abtest_psql -At -c "EXPLAIN (ANALYZE, TIMING OFF) $1" |
        sed -nE 's/^Execution Time: ([0-9.]+) ms$/\1/p'
}

names=()
rowcounts=()
sqls=()
setups=()
add_query() {   # add_query NAME ROWS SQL [SETUP_SQL]
    names+=("$1")
    rowcounts+=("$2")
    sqls+=("$3")
    setups+=("${4:-}")
}

add_query "hashtext (base)" "$ROWS" \
    "SELECT count(hashtext(i::text)) FROM generate_series(1, $ROWS) i"
add_query "ab_route_user, not sticky" "$ROWS" \
    "SELECT count(ab_route_user('loose', i::text)) FROM generate_series(1, $ROWS) i"
add_query "ab_route_user, sticky, new users" "$ROWS" \
    "SELECT count(ab_route_user('e', i::text)) FROM generate_series(1, $ROWS) i" \
    "SELECT bench_wait_for_flush(); SELECT ab_clear_sticky_cache('e')"
add_query "ab_route_user, sticky, returning users" "$ROWS" \
    "SELECT count(ab_route_user('e', i::text)) FROM generate_series(1, $ROWS) i"
add_query "ab_record_query" "$ROWS" \
    "SELECT count(ab_record_query('e', 'control', (i % 500)::float8, i % 10 <> 0)) FROM generate_series(1, $ROWS) i"
add_query "plpgsql_route, new users" "$PL_ROWS" \
    "SELECT count(plpgsql_route('e', i::text)) FROM generate_series(1, $PL_ROWS) i" \
    "SELECT bench_wait_for_flush(); TRUNCATE plpgsql_assignments"
# Runs right after "new users", so every user already has a row: the lookup path.
add_query "plpgsql_route, returning users" "$PL_ROWS" \
    "SELECT count(plpgsql_route('e', i::text)) FROM generate_series(1, $PL_ROWS) i"

# Round-robin (run 0 is a warm-up): a load change on the machine then hits
# every query alike instead of skewing one of them.
timesdir="$ABTEST_TMP/times"   # removed with the cluster
mkdir -p "$timesdir"
for (( run = 0; run <= RUNS; run++ )); do
    abtest_header "round $run of $RUNS$([ "$run" -eq 0 ] && echo ' (warm-up)')"
    for q in "${!names[@]}"; do
        if [ -n "${setups[$q]}" ]; then
            abtest_psql -q -c "${setups[$q]}" >/dev/null
        fi
        t="$(exec_ms "${sqls[$q]}")"
        if [ -z "$t" ]; then
            echo "bench: no execution time for: ${sqls[$q]}" >&2
            exit 1
        fi
        printf '  %-32s %10s ms  (%s rows)\n' "${names[$q]}" "$t" "${rowcounts[$q]}"
        if [ "$run" -gt 0 ]; then
            echo "$t" >>"$timesdir/$q"
        fi
    done
done

# Median and minimum per query, scaled to ROWS.
medians=()
mins=()
for q in "${!names[@]}"; do
    read -r med mn < <(sort -g "$timesdir/$q" | awk -v n="${rowcounts[$q]}" -v r="$ROWS" '
        {a[NR] = $1}
        END {
            m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            printf "%.1f %.1f\n", m * r / n, a[1] * r / n
        }')
    medians+=("$med")
    mins+=("$mn")
done

base="${medians[0]}"
ratio() { awk -v a="$1" -v b="$base" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r != "n/a" && r <= t) ? "met" : "NOT met"}'; }
route_ratio="$(ratio "${medians[1]}")"
new_ratio="$(ratio "${medians[2]}")"
returning_ratio="$(ratio "${medians[3]}")"

# Throughput with 2 clients over random users, against the same with hashtext.
abtest_header "pgbench, 2 clients, ${PGBENCH_SECONDS:-15} s each"
pgbench_dir="$ABTEST_TMP/pgbench"
mkdir -p "$pgbench_dir"
printf '\\set uid random(1, 1000000)\nSELECT hashtext(:uid::text);\n' >"$pgbench_dir/hashtext.sql"
printf '\\set uid random(1, 1000000)\nSELECT ab_route_user('"'"'e'"'"', :uid::text);\n' >"$pgbench_dir/route.sql"
chmod -R a+rX "$pgbench_dir"
tps() {
    abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T "${PGBENCH_SECONDS:-15}" -f "$1" postgres 2>&1 |
        sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}
abtest_psql -q -c "SELECT bench_wait_for_flush()" >/dev/null
printf '\\set lat random(1, 500)\nSELECT ab_record_query('"'"'e'"'"', '"'"'control'"'"', :lat, true);\n' \
    >"$pgbench_dir/record.sql"
printf '\\set lat random(1, 500)\nINSERT INTO bench_events (experiment, branch, latency_ms, success) VALUES ('"'"'e'"'"', '"'"'control'"'"', :lat, true);\n' \
    >"$pgbench_dir/insert.sql"
tps_hash="$(tps "$pgbench_dir/hashtext.sql")"
tps_route="$(tps "$pgbench_dir/route.sql")"
tps_record="$(tps "$pgbench_dir/record.sql")"
tps_insert="$(tps "$pgbench_dir/insert.sql")"
tps_ratio="$(awk -v a="$tps_route" -v b="$tps_hash" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')"
tps_met="$(awk -v r="$tps_ratio" 'BEGIN {print (r != "n/a" && r >= 0.8) ? "met" : "NOT met"}')"
echo "  hashtext: $tps_hash tps, ab_route_user: $tps_route tps, ratio $tps_ratio"
record_ratio="$(awk -v a="$tps_record" -v b="$tps_hash" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')"
record_met="$(awk -v r="$record_ratio" 'BEGIN {print (r != "n/a" && r >= 0.8) ? "met" : "NOT met"}')"
insert_ratio="$(awk -v a="$tps_record" -v b="$tps_insert" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "n/a"}')"
insert_met="$(awk -v r="$insert_ratio" 'BEGIN {print (r != "n/a" && r >= 10) ? "met" : "NOT met"}')"
echo "  ab_record_query: $tps_record tps ($record_ratio of hashtext), INSERT: $tps_insert tps ($insert_ratio x)"

pgver="$(abtest_psql -At -c 'SHOW server_version')"
cpu="$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)"
table="$(
    echo "# abtest benchmark"
    echo
    echo "PostgreSQL $pgver, ${cpu:-unknown CPU}, $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Median of $RUNS interleaved runs (after one warm-up round) of EXPLAIN (ANALYZE, TIMING OFF) execution time,"
    echo "jit = off. Times are for $ROWS rows; rows measured on fewer users are scaled up linearly."
    echo
    echo "| query | rows measured | median ms (per $ROWS rows) | min ms | ratio vs hashtext |"
    echo "|---|---:|---:|---:|---:|"
    for i in "${!names[@]}"; do
        echo "| ${names[$i]} | ${rowcounts[$i]} | ${medians[$i]} | ${mins[$i]} | $(ratio "${medians[$i]}") |"
    done
    echo
    echo "Targets:"
    echo
    echo "- ab_route_user, not sticky ≤ 1.5 × hashtext: $route_ratio × — $(verdict "$route_ratio" 1.5)"
    echo "- sticky, 1M new users ≤ 2.0 × hashtext: $new_ratio × — $(verdict "$new_ratio" 2.0)"
    echo "- sticky, 1M returning users ≤ 1.5 × hashtext: $returning_ratio × — $(verdict "$returning_ratio" 1.5)"
    echo
    echo "pgbench, 2 clients, ${PGBENCH_SECONDS:-15} s, random users of 1M: hashtext $tps_hash tps,"
    echo "ab_route_user (sticky) $tps_route tps: $tps_ratio of it (target ≥ 0.8 — $tps_met)."
    echo
    echo "pgbench, 2 clients, ${PGBENCH_SECONDS:-15} s: ab_record_query $tps_record tps: $record_ratio of hashtext"
    echo "(target ≥ 0.8 — $record_met), $insert_ratio × an INSERT of the same row into a plain table,"
    echo "$tps_insert tps (target ≥ 10 — $insert_met)."
)"

abtest_header "results"
echo "$table"
echo "$table" >"$RESULTS"
abtest_log "written to $RESULTS"
