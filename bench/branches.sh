#!/usr/bin/env bash
# What database branches cost, and what they show (issue #13), on pgbench's own table:
#  1. abtest preloaded but unused: pgbench -S against the same server without abtest
#     in shared_preload_libraries (rounds alternate between the two; medians);
#  2. transactions of 10 pk selects, and of 20 `SELECT 1`, that enter a branch
#     (ab_enter) against the same transactions that only route (ab_route_user): the
#     cost per measured statement, from TPS and from the server's CPU time;
#  3. a real change: two branches that differ by one planner setting on a 200,000-row
#     table, and an A/A experiment, read with ab_compare_queries.
# Usage: bash bench/branches.sh   (BRANCH_BENCH_SECONDS per pgbench run, default 15;
# BRANCH_BENCH_ROUNDS, default 5). Writes bench/results-branches.md. Never fails on
# slow numbers; exits non-zero only on errors.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECONDS_PER_RUN="${BRANCH_BENCH_SECONDS:-15}"
ROUNDS="${BRANCH_BENCH_ROUNDS:-5}"
RESULTS="$ABTEST_REPO/bench/results-branches.md"

abtest_bench_build

abtest_header "bench cluster"
abtest_start_cluster "jit = off" "shared_buffers = '256MB'" "max_connections = 20"
trap 'abtest_stop_cluster' EXIT

restart_with_preload() {  # restart_with_preload 'abtest' | ''
    abtest_as_postgres "$ABTEST_PG_BIN/pg_ctl" -D "$ABTEST_PGDATA" -w -l "$ABTEST_TMP/server.log" \
        -o "-c shared_preload_libraries=$1" restart >"$ABTEST_TMP/restart.log" 2>&1 ||
        { tail -20 "$ABTEST_TMP/restart.log" "$ABTEST_TMP/server.log" >&2; return 1; }
}
work="$ABTEST_TMP/branch-bench"
mkdir -p "$work"
tps() {  # tps SCRIPT_OR_BUILTIN...
    abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T "$SECONDS_PER_RUN" "$@" postgres 2>&1 |
        sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}
warm_up() { abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T 3 "$@" postgres >/dev/null 2>&1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }

abtest_header "setup: pgbench -i -s 10 (1M accounts)"
abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -i -q -s 10 postgres >/dev/null 2>&1
abtest_psql -q >/dev/null <<'SQL'
CREATE EXTENSION abtest;
SELECT ab_create_experiment('bench_enter', ARRAY['control', 'treatment']);
SELECT ab_configure('bench_enter', sticky => false);
SELECT ab_start('bench_enter');
SQL

abtest_header "1. pgbench -S: abtest preloaded and unused, against no abtest ($ROUNDS rounds)"
with=() without=()
for _ in $(seq 1 "$ROUNDS"); do
    restart_with_preload ''
    warm_up -S
    without+=("$(tps -S)")
    restart_with_preload 'abtest'
    warm_up -S
    with+=("$(tps -S)")
done
tps_without="$(median "${without[@]}")"
tps_with="$(median "${with[@]}")"
unused_ratio="$(ratio "$tps_with" "$tps_without")"
echo "without abtest: ${without[*]} tps; with abtest preloaded: ${with[*]} tps; ratio of medians $unused_ratio"

abtest_header "2. measured statements: ab_enter against ab_route_user ($ROUNDS rounds, interleaved)"
# Two workloads, each a transaction that routes with ab_route_user or enters with
# ab_enter and then runs N statements (2 clients):
#  pk:  10 primary-key selects on pgbench_accounts (simple protocol), the original;
#  one: 20 `SELECT 1` (prepared protocol): cheap statements, so that what timing a
#       statement costs is a larger part of the transaction.
# Per measured statement (every cost of ab_enter's transaction included, divided by N):
#  from TPS: (clients / tps_enter - clients / tps_route) / N, medians of the rounds;
#  from CPU: (server CPU per transaction with ab_enter - with ab_route_user) / N,
#            medians of the rounds. Server CPU is the user + system time of the
#            postmaster and all its processes (the exited backends included, as the
#            postmaster reaped them), read from /proc around each run: it does not
#            count the time spent waiting while other processes of a busy machine run.
# Rounds alternate which function runs first.
server_ticks() {  # CPU ticks the server used so far
    local pm
    pm="$(head -1 "$ABTEST_PGDATA/postmaster.pid")"
    # cat fails on a process that ended since the glob: that one's time is its parent's now.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '{
        pid = $1; rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
        if (pid == pm) t += f[12] + f[13] + f[14] + f[15]; else if (f[2] == pm) t += f[12] + f[13]
    } END {print t + 0}'
}
measure() {  # measure PGBENCH_ARGS...: prints "tps transactions server_cpu_us_per_transaction"
    local before after out
    before="$(server_ticks)"
    out="$(abtest_as_postgres "$ABTEST_PG_BIN/pgbench" -n -c 2 -j 2 -T "$SECONDS_PER_RUN" "$@" postgres 2>&1)" ||
        { echo "pgbench $* failed:" >&2; tail -5 <<<"$out" >&2; }
    sleep 0.5  # the clients' backends exit and are reaped
    after="$(server_ticks)"
    awk -v tps="$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out")" \
        -v n="$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")" \
        -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {if (n > 0) printf "%s %d %.2f\n", tps, n, ticks / hz / n * 1e6; else print "0 0 0"}'
}
for fn in ab_enter ab_route_user; do
    {
        printf '\\set uid random(1, 1000000)\nBEGIN;\nSELECT %s('"'"'bench_enter'"'"', :uid::text);\n' "$fn"
        for _ in $(seq 1 10); do
            printf '\\set aid random(1, 1000000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n'
        done
        printf 'COMMIT;\n'
    } >"$work/pk_$fn.sql"
    {
        printf '\\set uid random(1, 1000000)\nBEGIN;\nSELECT %s('"'"'bench_enter'"'"', :uid::text);\n' "$fn"
        for _ in $(seq 1 20); do printf 'SELECT 1;\n'; done
        printf 'COMMIT;\n'
    } >"$work/one_$fn.sql"
done
chmod -R a+rX "$work"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A tps_runs cpu_runs
warm_up -f "$work/pk_ab_route_user.sql"
warm_up -M prepared -f "$work/one_ab_route_user.sql"
for round in $(seq 1 "$ROUNDS"); do
    order=(ab_route_user ab_enter)
    ((round % 2)) || order=(ab_enter ab_route_user)
    for fn in "${order[@]}"; do
        read -r t _ c <<<"$(measure -f "$work/pk_$fn.sql")"
        tps_runs[pk_$fn]+="$t " cpu_runs[pk_$fn]+="$c "
        read -r t _ c <<<"$(measure -M prepared -f "$work/one_$fn.sql")"
        tps_runs[one_$fn]+="$t " cpu_runs[one_$fn]+="$c "
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A tps_of cpu_of ratio_of tps_cost cpu_cost
for w in pk one; do
    statements=10
    [ "$w" = one ] && statements=20
    for fn in ab_enter ab_route_user; do
        # shellcheck disable=SC2086
        tps_of[${w}_$fn]="$(median ${tps_runs[${w}_$fn]})"
        # shellcheck disable=SC2086
        cpu_of[${w}_$fn]="$(median ${cpu_runs[${w}_$fn]})"
    done
    ratio_of[$w]="$(ratio "${tps_of[${w}_ab_enter]}" "${tps_of[${w}_ab_route_user]}")"
    tps_cost[$w]="$(awk -v e="${tps_of[${w}_ab_enter]}" -v r="${tps_of[${w}_ab_route_user]}" -v n="$statements" \
        'BEGIN {printf "%.2f", (2 / e - 2 / r) / n * 1e6}')"
    cpu_cost[$w]="$(awk -v e="${cpu_of[${w}_ab_enter]}" -v r="${cpu_of[${w}_ab_route_user]}" -v n="$statements" \
        'BEGIN {printf "%.2f", (e - r) / n}')"
    echo "$w: ab_route_user ${tps_runs[${w}_ab_route_user]}tps, ${cpu_runs[${w}_ab_route_user]}µs CPU/tx;" \
        "ab_enter ${tps_runs[${w}_ab_enter]}tps, ${cpu_runs[${w}_ab_enter]}µs CPU/tx;" \
        "ratio ${ratio_of[$w]}; ${tps_cost[$w]} µs (TPS), ${cpu_cost[$w]} µs (CPU) per statement"
done
queries="$(abtest_psql -Atc "SELECT sum(query_count) FROM ab_branch_metrics('bench_enter')")"
echo "$queries statements measured; load average before $load_before, after $load_after"

abtest_header "2b. per statement in one backend: a loop of pk selects, entered against routed ($((2 * ROUNDS + 1)) rounds, interleaved)"
# A single transaction runs 200,000 primary-key selects from a PL/pgSQL loop (nested
# statements, timed with abtest.track_nested = on) after ab_enter, or after
# ab_route_user (not measured): the difference of its duration, divided by 200,000, is
# what timing one statement costs, without the network, the parser or a transaction's
# own costs, and far less disturbed by a busy machine than two clients' TPS.
loop_ms() {  # loop_ms FUNCTION: "wall_ms cpu_ms" of the loop, in a transaction that called FUNCTION
    # The CPU time is the backend's own (user + system, /proc/self/stat, 10 ms ticks).
    abtest_psql -Atq <<SQL
SET abtest.track_nested = on;
BEGIN;
SELECT $1('bench_enter', '42') \\g /dev/null
SELECT clock_timestamp() AS t0, $cpu_ticks AS c0 \\gset
DO \$\$DECLARE b int; BEGIN FOR i IN 1..200000 LOOP SELECT abalance INTO b FROM pgbench_accounts WHERE aid = 1 + (i * 7919) % 1000000; END LOOP; END\$\$;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 3) || ' ' || ($cpu_ticks - :c0) * 1000 / $hz;
COMMIT;
SQL
}
cpu_ticks="(SELECT f[12]::bigint + f[13]::bigint FROM string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') f)"
hz="$(getconf CLK_TCK)"
loop_ms ab_route_user >/dev/null
loop_enter=() loop_route=() loop_enter_cpu=() loop_route_cpu=()
for round in $(seq 1 $((2 * ROUNDS + 1))); do
    order=(ab_route_user ab_enter)
    ((round % 2)) || order=(ab_enter ab_route_user)
    for fn in "${order[@]}"; do
        read -r wall cpu <<<"$(loop_ms "$fn")"
        if [ "$fn" = ab_enter ]; then
            loop_enter+=("$wall") loop_enter_cpu+=("$cpu")
        else
            loop_route+=("$wall") loop_route_cpu+=("$cpu")
        fi
    done
done
loop_route_ms="$(median "${loop_route[@]}")"
loop_enter_ms="$(median "${loop_enter[@]}")"
loop_cost="$(awk -v e="$loop_enter_ms" -v r="$loop_route_ms" 'BEGIN {printf "%.2f", (e - r) / 200000 * 1000}')"
loop_route_cpu_ms="$(median "${loop_route_cpu[@]}")"
loop_enter_cpu_ms="$(median "${loop_enter_cpu[@]}")"
loop_cpu_cost="$(awk -v e="$loop_enter_cpu_ms" -v r="$loop_route_cpu_ms" 'BEGIN {printf "%.2f", (e - r) / 200000 * 1000}')"
echo "loop: routed ${loop_route[*]} ms (CPU ${loop_route_cpu[*]}); entered ${loop_enter[*]} ms (CPU ${loop_enter_cpu[*]});" \
    "$loop_cost µs per statement (wall), $loop_cpu_cost µs (backend CPU)"

abtest_header "3. a planner setting on a 200,000-row table, and an A/A, read with ab_compare_queries"
abtest_psql -q >/dev/null <<'SQL'
CREATE TABLE orders AS
  SELECT g AS id, (g % 10000) AS customer_id, (random() * 100)::numeric(8, 2) AS amount,
         now() - (g % 1000) * interval '1 hour' AS placed_at
    FROM generate_series(1, 200000) g;
CREATE INDEX ON orders (customer_id);
ANALYZE orders;
-- The change under test: the index scans turned off, as if the index were dropped.
SELECT ab_create_experiment('no_index', ARRAY['baseline', 'seqscan']);
SELECT ab_configure('no_index', sticky => false, min_sample_size => 30);
SELECT ab_set_branch_settings('no_index', 'seqscan', '{"enable_indexscan": false, "enable_bitmapscan": false}');
SELECT ab_start('no_index');
-- A/A: two branches with the same (empty) settings.
SELECT ab_create_experiment('same', ARRAY['a', 'b']);
SELECT ab_configure('same', sticky => false, min_sample_size => 30);
SELECT ab_start('same');
SQL
for exp in no_index same; do
    cat >"$work/$exp.sql" <<EOS
\\set uid random(1, 1000000)
\\set customer random(0, 9999)
BEGIN;
SELECT ab_enter('$exp', :uid::text);
SELECT sum(amount) FROM orders WHERE customer_id = :customer;
SELECT count(*) FROM orders WHERE customer_id = :customer AND amount > 50;
SELECT bbalance FROM pgbench_branches WHERE bid = 1;
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
markdown() {  # markdown EXPERIMENT A B: ab_compare_queries as a markdown table
    abtest_psql -q -A -F ' | ' -P footer=off -v exp="$1" -v a="$2" -v b="$3" <<<"$compare_sql" |
        awk 'NR == 1 {print "| " $0 " |"; n = split($0, c, " \\| "); s = "|"; for (i = 0; i < n; i++) s = s "---|"; print s; next}
             {print "| " $0 " |"}'
}
no_index_table="$(markdown no_index baseline seqscan)"
same_table="$(markdown same a b)"
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
    echo "| 10 pk selects per transaction, \`ab_enter\` / \`ab_route_user\` | ${ratio_of[pk]} (${tps_of[pk_ab_enter]} / ${tps_of[pk_ab_route_user]} tps) | — |"
    echo "| cost per measured statement, 10 pk selects: from TPS | ${tps_cost[pk]} µs | ≤ 1 µs |"
    echo "| cost per measured statement, 10 pk selects: from server CPU | ${cpu_cost[pk]} µs (${cpu_of[pk_ab_enter]} / ${cpu_of[pk_ab_route_user]} µs per transaction) | ≤ 1 µs |"
    echo "| cost per measured statement, one backend: 200,000 nested pk selects entered / routed, backend CPU | $loop_cpu_cost µs ($loop_enter_cpu_ms / $loop_route_cpu_ms ms) | ≤ 1 µs |"
    echo "| the same, wall clock | $loop_cost µs ($loop_enter_ms / $loop_route_ms ms) | ≤ 1 µs |"
    echo "| 20 \`SELECT 1\` per transaction (prepared), \`ab_enter\` / \`ab_route_user\` | ${ratio_of[one]} (${tps_of[one_ab_enter]} / ${tps_of[one_ab_route_user]} tps) | — |"
    echo "| cost per measured statement, 20 \`SELECT 1\`: from TPS | ${tps_cost[one]} µs | ≤ 1 µs |"
    echo "| cost per measured statement, 20 \`SELECT 1\`: from server CPU | ${cpu_cost[one]} µs (${cpu_of[one_ab_enter]} / ${cpu_of[one_ab_route_user]} µs per transaction) | ≤ 1 µs |"
    echo
    echo "Method: each transaction routes (\`ab_route_user\`) or enters a branch (\`ab_enter\`, no settings) and runs N statements;"
    echo "the cost per measured statement is everything \`ab_enter\`'s transaction costs more, divided by N:"
    echo "from TPS, (2 clients / tps_enter − 2 clients / tps_route) / N; from CPU, the difference of the server's CPU time"
    echo "(user + system of the postmaster and all its processes, exited backends included, from /proc) per transaction, / N."
    echo "Medians of $ROUNDS interleaved rounds; the order of the two functions alternates. Load average before $load_before, after $load_after."
    echo
    echo "One backend: a transaction runs 200,000 primary-key selects from a PL/pgSQL loop (abtest.track_nested = on) after \`ab_enter\`"
    echo "or after \`ab_route_user\`; the difference of the loop's backend CPU time (/proc/self/stat) and of its duration, / 200,000,"
    echo "medians of $((2 * ROUNDS + 1)) interleaved rounds."
    echo
    echo "Rounds: without abtest ${without[*]}; with ${with[*]} tps."
    for w in pk one; do
        echo "$w, ab_route_user: ${tps_runs[${w}_ab_route_user]}tps, ${cpu_runs[${w}_ab_route_user]}µs CPU per transaction;" \
            "ab_enter: ${tps_runs[${w}_ab_enter]}tps, ${cpu_runs[${w}_ab_enter]}µs CPU per transaction."
    done
    echo "Loop: routed ${loop_route[*]} ms (CPU ${loop_route_cpu[*]}); entered ${loop_enter[*]} ms (CPU ${loop_enter_cpu[*]})."
    echo
    echo "## \`enable_indexscan = off, enable_bitmapscan = off\` in branch \`seqscan\` (200,000 orders, index on customer_id; min_sample_size 30)"
    echo
    echo "$no_index_table"
    echo
    echo "## A/A: two branches with the same settings"
    echo
    echo "$same_table"
} >"$RESULTS"
abtest_log "wrote $RESULTS"
