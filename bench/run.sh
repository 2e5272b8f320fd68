#!/usr/bin/env bash
# Benchmark ab_route_user against hashtext() and a hand-written PL/pgSQL router, and
# ab_record_query against hashtext() and a plain INSERT.
# Usage: bash bench/run.sh
#   BENCH_ROWS          rows per query (default 1000000)
#   BENCH_PLPGSQL_ROWS  rows for the slow PL/pgSQL router (default BENCH_ROWS/10;
#                       its time is scaled up to BENCH_ROWS)
#   BENCH_RUNS          timed runs per query, median reported (default 5)
#   BENCH_HUGE_PAGES    1 = run the server on 2 MB huge pages (huge_pages = on): needs
#                       root, reserves vm.nr_hugepages for the run and restores it after
# Prints a markdown table and writes it to bench/results.md (results-huge-pages.md
# with BENCH_HUGE_PAGES=1). Never fails on
# slow numbers; exits non-zero only on errors.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-5}"
PL_ROWS="${BENCH_PLPGSQL_ROWS:-$(( ROWS / 10 > 0 ? ROWS / 10 : 1 ))}"
RESULTS="$ABTEST_REPO/bench/results.md"
if [ "${BENCH_HUGE_PAGES:-0}" = 1 ]; then RESULTS="$ABTEST_REPO/bench/results-huge-pages.md"; fi
abtest_require_positive_ints ROWS "$ROWS" RUNS "$RUNS" PL_ROWS "$PL_ROWS"

abtest_bench_build

abtest_header "bench cluster"
# Huge pages: a sticky lookup is one random access into a table of 160 MB here, and
# with 4 kB pages its address translation misses the TLB almost every time.
pages_setting="huge_pages = try"
pages_label="4 kB pages (huge_pages = try, none reserved)"
hugepages_before=""
if [ "${BENCH_HUGE_PAGES:-0}" = 1 ]; then
    hugepages_before="$(cat /proc/sys/vm/nr_hugepages)"
    # ~700 MB of shared memory (buffers, the cache, one database's queue), and the
    # 160 MB of memory_latency.
    if ! echo $(( hugepages_before + 480 )) >/proc/sys/vm/nr_hugepages 2>/dev/null; then
        echo "bench: BENCH_HUGE_PAGES=1 needs root to reserve vm.nr_hugepages" >&2
        exit 2
    fi
    pages_setting="huge_pages = on"
    pages_label="2 MB huge pages (huge_pages = on)"
fi
restore_hugepages() {
    if [ -n "$hugepages_before" ]; then echo "$hugepages_before" >/proc/sys/vm/nr_hugepages || true; fi
}
# JIT off: its compile time would add noise unrelated to per-call cost.
# A cache and queue big enough for a round of 1M new users at once (see README).
# fsync on (the test clusters turn it off): the INSERT baseline must pay for its WAL
# flush as it does on a real server.
abtest_start_cluster "jit = off" "shared_buffers = '256MB'" "fsync = on" "$pages_setting" \
    "abtest.sticky_cache_size = 4194304" "abtest.assignment_queue_size = '256MB'" "abtest.max_databases = 1" ||
    { restore_hugepages; exit 1; }
trap 'abtest_stop_cluster; restore_hugepages' EXIT

abtest_header "setup"
abtest_psql -q <<'SQL'
CREATE EXTENSION abtest;
SELECT ab_create_experiment('e', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_start('e');
SELECT ab_create_experiment('loose', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('loose', sticky => false);
SELECT ab_start('loose');
-- Targeting: three clauses over a five-key attributes object (issue #11's bench).
SELECT ab_create_experiment('targeted', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('targeted', sticky => false,
    condition => '{"country": {"$in": ["DE", "AT", "CH"]}, "os": "iOS", "app_version": {"$vgte": "4.2.0"}}');
SELECT ab_start('targeted');
SELECT ab_create_experiment('growthbook', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('growthbook', sticky => false);
SELECT ab_set_assignment('growthbook', 'growthbook', '{"coverage": 0.8}');
SELECT ab_start('growthbook');
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
# The clear makes the same user ids new again. The first call after a clear checks
# once whether the log is empty, an index scan through the 1M rows it just deleted
# (0.1-0.3 s, once per clear, not per user): a throwaway user pays it, untimed.
add_query "ab_route_user, sticky, new users" "$ROWS" \
    "SELECT count(ab_route_user('e', i::text)) FROM generate_series(1, $ROWS) i" \
    "SELECT bench_wait_for_flush(); SELECT ab_clear_sticky_cache('e'); SELECT ab_route_user('e', 'first after the clear')"
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
add_query "ab_route_user, not sticky, 3-clause condition" "$ROWS" \
    "SELECT count(ab_route_user('targeted', i::text, attributes => '{\"country\": \"DE\", \"os\": \"iOS\", \"app_version\": \"4.3.1\", \"plan\": \"pro\", \"age\": 34}')) FROM generate_series(1, $ROWS) i"
add_query "ab_route_user, growthbook strategy, not sticky" "$ROWS" \
    "SELECT count(ab_route_user('growthbook', i::text)) FROM generate_series(1, $ROWS) i"

# Round-robin (run 0 is a warm-up): a load change on the machine then hits
# every query alike instead of skewing one of them. All rounds run in one session,
# as in an application's connection pool: a new backend first maps the shared
# memory it touches, page by page (for the 160 MB cache, a warm-up of ~0.2 s that
# only the first routing calls of a connection pay).
timesdir="$ABTEST_TMP/times"   # removed with the cluster
mkdir -p "$timesdir"
script="$ABTEST_TMP/rounds.sql"
order=()   # "run query" for each EXPLAIN of the script, in order
for (( run = 0; run <= RUNS; run++ )); do
    for q in "${!names[@]}"; do
        if [ -n "${setups[$q]}" ]; then
            printf '\\o /dev/null\n%s;\n\\o\n' "${setups[$q]}"
        fi
        printf 'EXPLAIN (ANALYZE, TIMING OFF) %s;\n' "${sqls[$q]}"
        order+=("$run $q")
    done
done >"$script"
chmod a+r "$script"
measured=0
while IFS= read -r line; do
    t="$(sed -nE 's/^Execution Time: ([0-9.]+) ms$/\1/p' <<<"$line")"
    [ -n "$t" ] || continue
    read -r run q <<<"${order[$measured]}"
    measured=$(( measured + 1 ))
    if [ "$q" -eq 0 ]; then
        abtest_header "round $run of $RUNS$([ "$run" -eq 0 ] && echo ' (warm-up)' || true)"
    fi
    printf '  %-40s %10s ms  (%s rows)\n' "${names[$q]}" "$t" "${rowcounts[$q]}"
    if [ "$run" -gt 0 ]; then
        echo "$t" >>"$timesdir/$q"
    fi
done < <(abtest_psql -At -f "$script")
if [ "$measured" -ne "${#order[@]}" ]; then
    echo "bench: $measured of ${#order[@]} measurements; psql stopped early" >&2
    exit 1
fi

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
condition_ratio="$(ratio "${medians[7]}")"
growthbook_ratio="$(ratio "${medians[8]}")"

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

# The floor under a sticky lookup: one random read in memory of the cache's size
# (4194304 entries of 40 bytes), against the time of one hashtext call.
abtest_header "memory latency"
latency_bin="$ABTEST_TMP/memory_latency"
g++ -std=c++17 -O2 -o "$latency_bin" "$ABTEST_REPO/bench/memory_latency.cpp"
read_ns="$("$latency_bin" 160 "$([ "${BENCH_HUGE_PAGES:-0}" = 1 ] && echo huge || echo small)")"
hashtext_ns="$(awk -v ms="$base" -v r="$ROWS" 'BEGIN {printf "%.1f", ms * 1e6 / r}')"
read_ratio="$(awk -v a="$read_ns" -v b="$hashtext_ns" 'BEGIN {printf "%.2f", a / b}')"
echo "  one random read in 160 MB: $read_ns ns; one hashtext call: $hashtext_ns ns ($read_ratio x)"

pgver="$(abtest_psql -At -c 'SHOW server_version')"
cpu="$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)"
table="$(
    echo "# abtest benchmark"
    echo
    echo "PostgreSQL $pgver, ${cpu:-unknown CPU}, $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Shared memory on $pages_label."
    echo "Median of $RUNS interleaved runs (after one warm-up round, all in one session) of EXPLAIN (ANALYZE, TIMING OFF)"
    echo "execution time,"
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
    echo "- not sticky, a 3-clause condition on 5 attributes ≤ 2.0 × hashtext: $condition_ratio × — $(verdict "$condition_ratio" 2.0)"
    echo "- not sticky, growthbook strategy ≤ 1.5 × hashtext: $growthbook_ratio × — $(verdict "$growthbook_ratio" 1.5)"
    echo
    echo "The floor under a sticky lookup (bench/memory_latency.cpp): one random read in 160 MB"
    echo "of shared memory takes $read_ns ns here, $read_ratio × a whole hashtext call ($hashtext_ns ns)."
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
