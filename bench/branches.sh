#!/usr/bin/env bash
# What database branches cost, and what they show (issue #13), on pgbench's own table:
#  1. abtest preloaded but unused: pgbench -S against the same server without abtest
#     in shared_preload_libraries (rounds alternate between the two; medians);
#  2. a transaction of 10 selects that enters a branch (ab_enter) against the same
#     transaction that only routes (ab_route_user): the per-statement cost of timing;
#  3. a real change: two branches that differ by one planner setting on a 1M-row
#     table, and an A/A experiment, read with ab_compare_queries.
# Usage: bash bench/branches.sh   (BRANCH_BENCH_SECONDS per pgbench run, default 15;
# BRANCH_BENCH_ROUNDS, default 3). Writes bench/results-branches.md. Never fails on
# slow numbers; exits non-zero only on errors.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECONDS_PER_RUN="${BRANCH_BENCH_SECONDS:-15}"
ROUNDS="${BRANCH_BENCH_ROUNDS:-3}"
RESULTS="$ABTEST_REPO/bench/results-branches.md"

abtest_header "dependencies"
abtest_ensure_deps
abtest_header "build + install"
abtest_build_install

abtest_header "bench cluster"
abtest_start_cluster "jit = off" "shared_buffers = '256MB'" "max_connections = 20"
trap 'abtest_stop_cluster' EXIT

restart_with_preload() {  # restart_with_preload 'abtest' | ''
    abtest_psql -q -c "ALTER SYSTEM SET shared_preload_libraries = '$1'"
    abtest_as_postgres "$ABTEST_PG_BIN/pg_ctl" -D "$ABTEST_PGDATA" -w -l "$ABTEST_TMP/server.log" restart >/dev/null
}
work="$ABTEST_TMP/branch-bench"
mkdir -p "$work"
tps() {  # tps SCRIPT_OR_BUILTIN...
    abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T "$SECONDS_PER_RUN" "$@" postgres 2>&1 |
        sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }

abtest_header "setup: pgbench -i -s 10 (1M accounts)"
abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -i -q -s 10 postgres >/dev/null 2>&1
abtest_psql -q <<'SQL'
CREATE EXTENSION abtest;
SELECT ab_create_experiment('bench_enter', ARRAY['control', 'treatment']);
SELECT ab_configure('bench_enter', sticky => false);
SELECT ab_start('bench_enter');
SQL

abtest_header "1. pgbench -S: abtest preloaded and unused, against no abtest ($ROUNDS rounds)"
with=() without=()
for _ in $(seq 1 "$ROUNDS"); do
    restart_with_preload ''
    without+=("$(tps -S)")
    restart_with_preload 'abtest'
    with+=("$(tps -S)")
done
tps_without="$(median "${without[@]}")"
tps_with="$(median "${with[@]}")"
unused_ratio="$(ratio "$tps_with" "$tps_without")"
echo "without abtest: ${without[*]} tps; with abtest preloaded: ${with[*]} tps; ratio of medians $unused_ratio"

abtest_header "2. 10 selects per transaction: ab_enter against ab_route_user ($ROUNDS rounds)"
for fn in ab_enter ab_route_user; do
    {
        printf '\\set uid random(1, 1000000)\nBEGIN;\nSELECT %s('"'"'bench_enter'"'"', :uid::text);\n' "$fn"
        for _ in $(seq 1 10); do
            printf '\\set aid random(1, 1000000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n'
        done
        printf 'COMMIT;\n'
    } >"$work/$fn.sql"
done
chmod -R a+rX "$work"
entered=() routed=()
for _ in $(seq 1 "$ROUNDS"); do
    routed+=("$(tps -f "$work/ab_route_user.sql")")
    entered+=("$(tps -f "$work/ab_enter.sql")")
done
tps_routed="$(median "${routed[@]}")"
tps_entered="$(median "${entered[@]}")"
entered_ratio="$(ratio "$tps_entered" "$tps_routed")"
# Two clients on two cores: a client's transaction takes 2 / tps seconds; 10 statements.
per_statement_us="$(awk -v e="$tps_entered" -v r="$tps_routed" 'BEGIN {printf "%.2f", (2 / e - 2 / r) / 10 * 1e6}')"
queries="$(abtest_psql -Atc "SELECT sum(query_count) FROM ab_branch_metrics('bench_enter')")"
echo "ab_route_user: ${routed[*]} tps; ab_enter: ${entered[*]} tps; ratio $entered_ratio; $per_statement_us µs per statement; $queries statements measured"

abtest_header "3. a planner setting on a 1M-row table, and an A/A, read with ab_compare_queries"
abtest_psql -q <<'SQL'
CREATE TABLE orders AS
  SELECT g AS id, (g % 50000) AS customer_id, (random() * 100)::numeric(8, 2) AS amount,
         now() - (g % 1000) * interval '1 hour' AS placed_at
    FROM generate_series(1, 1000000) g;
CREATE INDEX ON orders (customer_id);
ANALYZE orders;
-- The change under test: the index scans turned off, as if the index were dropped.
SELECT ab_create_experiment('no_index', ARRAY['baseline', 'seqscan']);
SELECT ab_configure('no_index', sticky => false);
SELECT ab_set_branch_settings('no_index', 'seqscan', '{"enable_indexscan": false, "enable_bitmapscan": false}');
SELECT ab_start('no_index');
-- A/A: two branches with the same (empty) settings.
SELECT ab_create_experiment('same', ARRAY['a', 'b']);
SELECT ab_configure('same', sticky => false);
SELECT ab_start('same');
SQL
for exp in no_index same; do
    cat >"$work/$exp.sql" <<EOS
\\set uid random(1, 1000000)
\\set customer random(0, 49999)
BEGIN;
SELECT ab_enter('$exp', :uid::text);
SELECT sum(amount) FROM orders WHERE customer_id = :customer;
SELECT count(*) FROM orders WHERE customer_id = :customer AND amount > 50;
SELECT id FROM orders WHERE id = :customer + 1;
COMMIT;
EOS
done
chmod -R a+rX "$work"
abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T "$SECONDS_PER_RUN" -f "$work/no_index.sql" postgres >/dev/null 2>&1
abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T "$SECONDS_PER_RUN" -f "$work/same.sql" postgres >/dev/null 2>&1
compare_sql="SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 60) AS query, calls_a, calls_b,
       round(mean_ms_a::numeric, 3) AS mean_ms_a, round(mean_ms_b::numeric, 3) AS mean_ms_b,
       round(relative_change::numeric, 3) AS relative_change, to_char(p_value, '9.9EEEE') AS p_value,
       to_char(adjusted_p_value, '9.9EEEE') AS adjusted, is_significant
  FROM ab_compare_queries(:'exp', :'a', :'b') ORDER BY query"
no_index_table="$(abtest_psql -v exp=no_index -v a=baseline -v b=seqscan --pset=format=markdown <<<"$compare_sql")"
same_table="$(abtest_psql -v exp=same -v a=a -v b=b --pset=format=markdown <<<"$compare_sql")"
echo "$no_index_table"
echo "$same_table"

{
    echo "# Database branches: cost and a worked comparison"
    echo
    echo "bench/branches.sh on $(nproc) cores, $(date -u +%Y-%m-%d), PostgreSQL $(abtest_psql -Atc 'SHOW server_version'),"
    echo "pgbench scale 10 (1M accounts), 2 clients, $SECONDS_PER_RUN s per run, median of $ROUNDS rounds."
    echo
    echo "| Measure | Result | Target |"
    echo "|---|---|---|"
    echo "| \`pgbench -S\`, abtest preloaded and unused / no abtest | $unused_ratio ($tps_with / $tps_without tps) | ≥ 0.98 |"
    echo "| 10 selects per transaction, \`ab_enter\` / \`ab_route_user\` | $entered_ratio ($tps_entered / $tps_routed tps) | — |"
    echo "| cost of timing, per measured statement | $per_statement_us µs | ≤ 1 µs |"
    echo
    echo "Rounds: without abtest ${without[*]}; with ${with[*]}; ab_route_user ${routed[*]}; ab_enter ${entered[*]} tps."
    echo
    echo "## \`enable_indexscan = off, enable_bitmapscan = off\` in branch \`seqscan\` (1M orders, index on customer_id)"
    echo
    echo "$no_index_table"
    echo
    echo "## A/A: two branches with the same settings"
    echo
    echo "$same_table"
} >"$RESULTS"
abtest_log "wrote $RESULTS"
