#!/usr/bin/env bash
# Benchmark the outcome analysis (issue #16) against the query an analyst would write
# by hand on the same data: the assignment log LEFT JOIN the facts, GROUP BY user, then
# an aggregate per branch.
# Usage: bash bench/outcomes.sh
#   BENCH_USERS   assigned users (default 1000000)
#   BENCH_FACTS   fact rows (default 10000000)
#   BENCH_RUNS    timed runs per query, median reported (default 3)
# Prints a markdown table and writes it to bench/results-outcomes.md. Never fails on
# slow numbers; exits non-zero only on errors.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

USERS="${BENCH_USERS:-1000000}"
FACTS="${BENCH_FACTS:-10000000}"
RUNS="${BENCH_RUNS:-3}"
RESULTS="$ABTEST_REPO/bench/results-outcomes.md"
abtest_require_positive_ints USERS "$USERS" FACTS "$FACTS" RUNS "$RUNS"

abtest_bench_build

abtest_header "bench cluster"
# PostgreSQL's defaults for a small server, except memory for the hash joins and sorts
# (the same for every query here) and no JIT (its compile time is noise).
abtest_start_cluster "jit = off" "shared_buffers = '1GB'" "work_mem = '256MB'" \
    "max_parallel_workers_per_gather = 2" || exit 1
trap 'abtest_stop_cluster' EXIT

abtest_header "data: $USERS users, $FACTS orders"
abtest_psql -q <<SQL
CREATE EXTENSION abtest;
SELECT ab_create_experiment('checkout', ARRAY['control', 'treatment']) IS NOT NULL;
SELECT ab_start('checkout');
UPDATE abtest.experiments SET started_at = now() - interval '30 days' WHERE name = 'checkout';
-- The log as the flush worker writes it: users assigned over the first 20 days.
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT e.id, i::text, CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END,
       e.started_at + (hashint4(i) & 1048575) / 1048576.0 * interval '20 days'
  FROM abtest.experiments e, generate_series(1, $USERS) i WHERE e.name = 'checkout';
-- Orders of the application: integer user ids (a fifth of them not in the
-- experiment), heavy-tailed amounts, from two weeks before the start until now.
CREATE TABLE orders (id bigint, user_id integer, amount numeric(12, 2), created_at timestamptz);
INSERT INTO orders
SELECT i, 1 + (hashint8(i) & 2147483647) % ($USERS * 5 / 4),
       round((exp(((hashint8(i * 7) & 65535) / 65536.0) * 4) + 1)::numeric, 2),
       now() - interval '44 days' + ((hashint8(i * 13) & 1048575) / 1048576.0) * interval '44 days'
  FROM generate_series(1, $FACTS) i;
VACUUM ANALYZE orders;
VACUUM ANALYZE abtest.assignments;
SELECT ab_define_metric('revenue', 'orders', 'user_id', 'created_at', 'amount', conversion_window => '14 days');
SQL

experiment_id="$(abtest_psql -At -c "SELECT id FROM abtest.experiments WHERE name = 'checkout'")"
names=(
    "hand-written LEFT JOIN ... GROUP BY user (base)"
    "ab_analyze"
    "hand-written, with the pre-period (CUPED base)"
    "ab_analyze, cuped => true"
    "ab_analyze_over_time, 30 steps"
)
sqls=(
    "SELECT branch, count(*), avg(y), var_samp(y) FROM (
       SELECT a.branch, a.user_id, coalesce(sum(o.amount::float8), 0) AS y
         FROM abtest.assignments a
         LEFT JOIN orders o ON o.user_id::text = a.user_id AND o.created_at >= a.assigned_at
              AND o.created_at < a.assigned_at + interval '14 days' AND o.created_at < now()
        WHERE a.experiment_id = '$experiment_id' GROUP BY a.branch, a.user_id) per_user GROUP BY branch"
    "SELECT * FROM ab_analyze('checkout', 'revenue')"
    "SELECT branch, count(*), avg(y), var_samp(y), avg(x), var_samp(x), covar_samp(x, y) FROM (
       SELECT a.branch, a.user_id,
              coalesce(sum(o.amount::float8) FILTER (WHERE o.created_at >= a.assigned_at
                                                      AND o.created_at < a.assigned_at + interval '14 days'), 0) AS y,
              coalesce(sum(o.amount::float8) FILTER (WHERE o.created_at < a.assigned_at), 0) AS x
         FROM abtest.assignments a
         LEFT JOIN orders o ON o.user_id::text = a.user_id AND o.created_at >= a.assigned_at - interval '14 days'
              AND o.created_at < now()
        WHERE a.experiment_id = '$experiment_id' GROUP BY a.branch, a.user_id) per_user GROUP BY branch"
    "SELECT * FROM ab_analyze('checkout', 'revenue', cuped => true)"
    "SELECT * FROM ab_analyze_over_time('checkout', 'revenue', '1 day')"
)

timesdir="$ABTEST_TMP/times"
mkdir -p "$timesdir"
script="$ABTEST_TMP/rounds.sql"
order=()
{
    echo '\timing on'
    echo '\o /dev/null'
    for (( run = 0; run <= RUNS; run++ )); do
        for q in "${!names[@]}"; do
            printf '%s;\n' "${sqls[$q]}"
            order+=("$run $q")
        done
    done
} >"$script"
chmod a+r "$script"
measured=0
while IFS= read -r line; do
    t="$(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$line")"
    [ -n "$t" ] || continue
    read -r run q <<<"${order[$measured]}"
    measured=$(( measured + 1 ))
    if [ "$q" -eq 0 ]; then
        abtest_header "round $run of $RUNS$([ "$run" -eq 0 ] && echo ' (warm-up)' || true)"
    fi
    printf '  %-50s %10s ms\n' "${names[$q]}" "$t"
    if [ "$run" -gt 0 ]; then echo "$t" >>"$timesdir/$q"; fi
done < <(abtest_psql -f "$script" 2>&1)
if [ "$measured" -ne "${#order[@]}" ]; then
    echo "bench: $measured of ${#order[@]} measurements; psql stopped early" >&2
    exit 1
fi

medians=()
for q in "${!names[@]}"; do
    medians+=("$(sort -g "$timesdir/$q" | awk '{a[NR] = $1} END {printf "%.0f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r != "n/a" && r <= t) ? "met" : "NOT met"}'; }
analyze_ratio="$(ratio "${medians[1]}" "${medians[0]}")"
cuped_ratio="$(ratio "${medians[3]}" "${medians[2]}")"
cuped_vs_plain="$(ratio "${medians[3]}" "${medians[0]}")"
over_time_ratio="$(ratio "${medians[4]}" "${medians[1]}")"
plan="$(abtest_psql -At -c "EXPLAIN (COSTS OFF) ${sqls[0]}" | grep -oE 'Parallel [A-Za-z ]+|Hash (Right |Left )?Join' | sort -u | paste -sd, -)"

{
    echo "# Outcome analysis benchmark"
    echo
    echo "$USERS assigned users, $FACTS orders, $(nproc) cores, median of $RUNS runs"
    echo "($(date -u +%Y-%m-%d), PostgreSQL $(abtest_psql -At -c 'SHOW server_version'), work_mem 256MB,"
    echo "max_parallel_workers_per_gather 2; plan of the hand-written query: $plan)."
    echo
    echo "| query | median ms | ratio | target |"
    echo "|---|---:|---:|---|"
    echo "| ${names[0]} | ${medians[0]} | 1.00 | baseline |"
    echo "| ${names[1]} | ${medians[1]} | $analyze_ratio | ≤ 1.3: $(verdict "$analyze_ratio" 1.3) |"
    echo "| ${names[2]} | ${medians[2]} | 1.00 | CUPED baseline |"
    echo "| ${names[3]} | ${medians[3]} | $cuped_ratio of the CUPED base, $cuped_vs_plain of the base | ≤ 1.6 of the base: $(verdict "$cuped_vs_plain" 1.6) |"
    echo "| ${names[4]} | ${medians[4]} | $over_time_ratio of ab_analyze | ≤ 3: $(verdict "$over_time_ratio" 3) |"
} | tee "$RESULTS"
