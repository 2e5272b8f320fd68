#!/usr/bin/env bash
# Benchmark ab_route_user against hashtext() and a hand-written PL/pgSQL router.
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
abtest_start_cluster "jit = off" "shared_buffers = '256MB'"

abtest_header "setup"
abtest_psql -q <<'SQL'
CREATE EXTENSION abtest;
SELECT ab_create_experiment('e', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_start('e');
SQL
abtest_psql -q <"$ABTEST_REPO/bench/plpgsql_router.sql"

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
add_query "ab_route_user" "$ROWS" \
    "SELECT count(ab_route_user('e', i::text)) FROM generate_series(1, $ROWS) i"
add_query "plpgsql_route, new users" "$PL_ROWS" \
    "SELECT count(plpgsql_route('e', i::text)) FROM generate_series(1, $PL_ROWS) i" \
    "TRUNCATE plpgsql_assignments"
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
route_ratio="$(ratio "${medians[1]}")"
target_met="$(awk -v r="$route_ratio" 'BEGIN {print (r != "n/a" && r <= 1.5) ? "met" : "NOT met"}')"

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
    echo "- ab_route_user ≤ 1.5 × hashtext: $route_ratio × — $target_met"
)"

abtest_header "results"
echo "$table"
echo "$table" >"$RESULTS"
abtest_log "written to $RESULTS"
