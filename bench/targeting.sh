#!/usr/bin/env bash
# The three not-sticky routing rows of bench/run.sh (no targeting, a 3-clause condition,
# the growthbook strategy) against its hashtext baseline, and nothing else: the same
# queries and experiments, interleaved over more rounds, so that their ratios can be
# measured in a few minutes on a machine whose load changes (issue #11). Two more rows
# pass attributes that vary per row, with and without the condition.
# Usage: bash bench/targeting.sh  (on a shared machine: flock -o /tmp/abtest-install.lock bash bench/targeting.sh)
#   BENCH_ROWS    rows per query (default 1000000)
#   BENCH_RUNS    timed rounds, median reported (default 9)
#   BENCH_NO_BUILD  1 = use the installed extension as it is
# Writes the table to bench/results-targeting.md. Never fails on slow numbers.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-9}"
RESULTS="$ABTEST_REPO/bench/results-targeting.md"
abtest_require_positive_ints ROWS "$ROWS" RUNS "$RUNS"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    abtest_header "build + install"
    abtest_build_install
fi

abtest_header "bench cluster"
# As bench/run.sh, without its sticky cache: no query here is sticky.
abtest_start_cluster "jit = off" "shared_buffers = '256MB'" "abtest.max_databases = 1"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

abtest_header "setup"
# The experiments of bench/run.sh, configured the same way.
abtest_psql -q <<'SQL'
CREATE EXTENSION abtest;
SELECT ab_create_experiment('loose', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('loose', sticky => false);
SELECT ab_start('loose');
SELECT ab_create_experiment('targeted', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('targeted', sticky => false,
    condition => '{"country": {"$in": ["DE", "AT", "CH"]}, "os": "iOS", "app_version": {"$vgte": "4.2.0"}}');
SELECT ab_start('targeted');
SELECT ab_create_experiment('growthbook', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_configure('growthbook', sticky => false);
SELECT ab_set_assignment('growthbook', 'growthbook', '{"coverage": 0.8}');
SELECT ab_start('growthbook');
SQL

# Rows 5 and 6 route the users of a table whose attributes differ from row to row (3/4
# of the countries, 7/8 of the systems and 8/9 of the versions match, so most calls
# evaluate every clause), with and without the condition: their difference is the
# condition's cost when no two calls see the same jsonb (read from a table, it also pays
# for detoasting the jsonb's short header).
abtest_psql -q <<SQL
CREATE TABLE bench_users AS
  SELECT i, jsonb_build_object('country', (ARRAY['DE', 'AT', 'CH', 'US'])[i % 4 + 1],
                               'os', CASE WHEN i % 8 = 0 THEN 'Android' ELSE 'iOS' END,
                               'app_version', '4.' || (1 + i % 9) || '.' || (i % 10),
                               'plan', 'pro', 'age', 18 + i % 60) AS attributes
    FROM generate_series(1, $ROWS) i;
VACUUM ANALYZE bench_users;
SQL
names=("hashtext (base)" "ab_route_user, not sticky" "ab_route_user, not sticky, 3-clause condition"
    "ab_route_user, growthbook strategy, not sticky" "ab_route_user, not sticky, table of varying attributes"
    "ab_route_user, not sticky, 3-clause condition, table of varying attributes")
sqls=(
    "SELECT count(hashtext(i::text)) FROM generate_series(1, $ROWS) i"
    "SELECT count(ab_route_user('loose', i::text)) FROM generate_series(1, $ROWS) i"
    "SELECT count(ab_route_user('targeted', i::text, attributes => '{\"country\": \"DE\", \"os\": \"iOS\", \"app_version\": \"4.3.1\", \"plan\": \"pro\", \"age\": 34}')) FROM generate_series(1, $ROWS) i"
    "SELECT count(ab_route_user('growthbook', i::text)) FROM generate_series(1, $ROWS) i"
    "SELECT count(ab_route_user('loose', i::text, attributes => attributes)) FROM bench_users"
    "SELECT count(ab_route_user('targeted', i::text, attributes => attributes)) FROM bench_users"
)

# Round-robin in one session, round 0 a warm-up, as bench/run.sh does.
timesdir="$ABTEST_TMP/times"
mkdir -p "$timesdir"
script="$ABTEST_TMP/rounds.sql"
for (( run = 0; run <= RUNS; run++ )); do
    for q in "${!names[@]}"; do
        printf 'EXPLAIN (ANALYZE, TIMING OFF) %s;\n' "${sqls[$q]}"
    done
done >"$script"
chmod a+r "$script"
measured=0
while IFS= read -r line; do
    t="$(sed -nE 's/^Execution Time: ([0-9.]+) ms$/\1/p' <<<"$line")"
    [ -n "$t" ] || continue
    run=$(( measured / ${#names[@]} ))
    q=$(( measured % ${#names[@]} ))
    measured=$(( measured + 1 ))
    if [ "$q" -eq 0 ]; then
        abtest_header "round $run of $RUNS$([ "$run" -eq 0 ] && echo ' (warm-up)' || true)"
    fi
    printf '  %-48s %10s ms\n' "${names[$q]}" "$t"
    if [ "$run" -gt 0 ]; then echo "$t" >>"$timesdir/$q"; fi
done < <(abtest_psql -At -f "$script")
if [ "$measured" -ne $(( (RUNS + 1) * ${#names[@]} )) ]; then
    echo "bench: $measured measurements; psql stopped early" >&2
    exit 1
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR] = $1} END {printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# The ratio of the medians (as bench/run.sh), and the median of each round's ratio to
# that round's hashtext, which a load change between rounds disturbs less.
base="$(median <"$timesdir/0")"
table="$(
    echo "# abtest targeting benchmark"
    echo
    echo "PostgreSQL $(abtest_psql -At -c 'SHOW server_version'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Median of $RUNS interleaved rounds (after a warm-up, one session) of EXPLAIN (ANALYZE, TIMING OFF), jit = off,"
    echo "$ROWS rows. Load average before: $load_before; after: $load_after."
    echo
    echo "| query | median ms | min ms | max ms | ratio of medians | median of round ratios |"
    echo "|---|---:|---:|---:|---:|---:|"
    for q in "${!names[@]}"; do
        med="$(median <"$timesdir/$q")"
        mn="$(sort -g "$timesdir/$q" | head -n1)"
        mx="$(sort -g "$timesdir/$q" | tail -n1)"
        rr="$(paste "$timesdir/$q" "$timesdir/0" | awk '{printf "%.4f\n", $1 / $2}' | sort -g |
            awk '{a[NR] = $1} END {printf "%.2f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')"
        echo "| ${names[$q]} | $med | $mn | $mx | $(awk -v a="$med" -v b="$base" 'BEGIN {printf "%.2f", a / b}') | $rr |"
    done
    echo
    echo "Targets: not sticky ≤ 1.5, 3-clause condition ≤ 2.0, growthbook ≤ 1.5 (× hashtext)."
    echo
    # The condition's own cost: each round's difference between the rows with and
    # without it, per call.
    for pair in "2 1 constant" "5 4 varying"; do
        read -r with without kind <<<"$pair"
        ns="$(paste "$timesdir/$with" "$timesdir/$without" | awk -v rows="$ROWS" '{printf "%.1f\n", ($1 - $2) * 1e6 / rows}' |
            sort -g | awk '{a[NR] = $1} END {printf "%.0f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')"
        echo "The 3-clause condition costs $ns ns per call with $kind attributes (median of the rounds' differences)."
    done
)"

abtest_header "results"
echo "$table"
echo "$table" >"$RESULTS"
abtest_log "written to $RESULTS"
