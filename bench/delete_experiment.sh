#!/usr/bin/env bash
# Deleting an experiment whose assignment log is large (issue #12): for an experiment
# with BENCH_USERS logged users beside another experiment's 100,000, the time of
# ab_delete_experiment, the time until the flush worker has purged its log rows
# (abtest.deleted_experiments is empty again), and whether routing and flushing of the
# other experiment are held up meanwhile: 10,000 new users routed and flushed, and one
# synchronous write, timed before the delete and again while the purge runs. Then
# the VACUUM that gives the space back.
# Usage: bash bench/delete_experiment.sh
#   BENCH_USERS   logged users of the deleted experiment (default 5000000)
# Writes bench/results-delete.md. Never fails on slow numbers.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

USERS="${BENCH_USERS:-5000000}"
abtest_require_positive_ints BENCH_USERS "$USERS"
RESULTS="$ABTEST_REPO/bench/results-delete.md"
NEW_USERS=10000

abtest_bench_build

abtest_header "bench cluster"
abtest_start_cluster "fsync = on" "jit = off"
abtest_psql -q -c "CREATE EXTENSION abtest"

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# Routes $NEW_USERS new users of 'kept' (prefix $1) and waits until the flush worker
# has written them; prints the routing statement's seconds, the seconds until all were
# flushed (from the start), and a synchronous write's milliseconds.
route_and_flush() {
    local prefix="$1" start route_s sync_ms
    start="$(now)"
    abtest_psql -qAt -c "SELECT count(ab_route_user('kept', '$prefix' || i)) FROM generate_series(1, $NEW_USERS) i" >/dev/null
    route_s="$(seconds_since "$start")"
    until [ "$(abtest_psql -qAt -c "SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e
                 ON e.id = a.experiment_id AND e.name = 'kept' WHERE a.user_id LIKE '$prefix%'")" = "$NEW_USERS" ]; do
        sleep 0.05
    done
    flushed_s="$(seconds_since "$start")"
    sync_ms="$(abtest_psql -qAt <<SQL | tail -n 1
SET abtest.sticky_durability = sync;
SELECT clock_timestamp() AS t0 \gset
SELECT ab_route_user('kept', '${prefix}sync') IS NULL;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1);
SQL
)"
    echo "$route_s $flushed_s $sync_ms"
}

abtest_header "$USERS logged users"
# The log is filled directly (as the flush worker would have written it), then made
# durable and analysed, so that the delete is timed alone.
size="$(abtest_psql -qAt <<SQL | tail -n 1
SELECT ab_create_experiment('large', ARRAY['control', 'treatment']) IS NULL;
SELECT ab_start('large');
SELECT ab_create_experiment('kept', ARRAY['control', 'treatment']) IS NULL;
SELECT ab_start('kept');
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT e.id, e.name || i, CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END, now()
  FROM abtest.experiments e, generate_series(1, $USERS) i WHERE e.name = 'large'
UNION ALL
SELECT e.id, e.name || i, 'control', now()
  FROM abtest.experiments e, generate_series(1, 100000) i WHERE e.name = 'kept';
VACUUM ANALYZE abtest.assignments;
CHECKPOINT;
SELECT pg_total_relation_size('abtest.assignments');
SQL
)"
large_id="$(abtest_psql -qAt -c "SELECT id FROM abtest.experiments WHERE name = 'large'")"

abtest_header "routing and flushing without a purge"
read -r base_route_s base_flushed_s base_sync_ms <<<"$(route_and_flush base)"

abtest_header "the delete, and routing and flushing during the purge"
start="$(now)"
delete_s="$(abtest_psql -qAt <<SQL | tail -n 1
SELECT clock_timestamp() AS t0 \gset
SELECT ab_delete_experiment('large');
SELECT extract(epoch FROM clock_timestamp() - :'t0');
SQL
)"
read -r during_route_s during_flushed_s during_sync_ms <<<"$(route_and_flush during)"
still_pending="$(abtest_psql -qAt -c "SELECT count(*) FROM abtest.deleted_experiments")"
until [ "$(abtest_psql -qAt -c "SELECT count(*) FROM abtest.deleted_experiments")" = 0 ]; do
    sleep 0.2
done
purge_s="$(seconds_since "$start")"
left="$(abtest_psql -qAt -c "SELECT count(*) FROM abtest.assignments WHERE experiment_id = '$large_id'")"
kept="$(abtest_psql -qAt -c "SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e
          ON e.id = a.experiment_id WHERE e.name = 'kept'")"
expected_kept=$((100000 + 2 * NEW_USERS + 2))
if [ "$left" != 0 ] || [ "$kept" != "$expected_kept" ]; then
    echo "bench: expected no row of the deleted experiment and $expected_kept of the kept one, found $left and $kept" >&2
    exit 1
fi
server_line="$(grep -o 'abtest: purged .*' "$ABTEST_TMP/server.log" | tail -n 1 || true)"

start="$(now)"
abtest_psql -qAt -c "VACUUM abtest.assignments" >/dev/null
vacuum_s="$(seconds_since "$start")"

pgver="$(abtest_psql -At -c 'SHOW server_version')"
rate="$(awk -v n="$USERS" -v s="$purge_s" 'BEGIN { printf "%d", n / s }')"
{
    echo "# Deleting an experiment with a large log (bench/delete_experiment.sh)"
    echo
    echo "PostgreSQL $pgver, $(nproc) cores, fsync on, abtest.flush_interval 1 s," \
        "$(date -u '+%Y-%m-%d %H:%M UTC'). ab_delete_experiment is timed in its session, the rest wall-clock from the bench's shell (psql's start included)."
    echo
    echo "| logged users | log before (table and indexes) | ab_delete_experiment | until purged | rows/s | VACUUM afterwards |"
    echo "|---:|---:|---:|---:|---:|---:|"
    printf '| %s | %s MB | %.3f s | %.1f s | %s | %.1f s |\n' "$USERS" "$(( size / 1048576 ))" "$delete_s" "$purge_s" \
        "$rate" "$vacuum_s"
    echo
    echo "The server log: \`$server_line\` (timed from the worker's first look at the deletion)."
    echo
    echo "Another experiment (100,000 logged users) while nothing is purged, and while the purge runs"
    echo "(started right after the delete returned; the purge was still pending afterwards: $([ "$still_pending" = 1 ] && echo yes || echo no)):"
    echo
    echo "| | route $NEW_USERS new users | until all flushed | one synchronous write |"
    echo "|---|---:|---:|---:|"
    printf '| no purge | %.2f s | %.2f s | %s ms |\n' "$base_route_s" "$base_flushed_s" "$base_sync_ms"
    printf '| during the purge | %.2f s | %.2f s | %s ms |\n' "$during_route_s" "$during_flushed_s" "$during_sync_ms"
    echo
    echo "ab_delete_experiment takes no lock on abtest.assignments: it records the experiment in"
    echo "abtest.deleted_experiments, and the database's flush worker deletes its rows in batches of"
    echo "10,000, one short transaction each under ROW EXCLUSIVE, flushing the queue between batches."
    echo "The other experiment's rows stay. \"until purged\" counts from the call's start to the moment"
    echo "abtest.deleted_experiments was seen empty (polled every 0.2 s)."
} | tee "$RESULTS"
