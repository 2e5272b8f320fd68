#!/usr/bin/env bash
# Deleting an experiment whose assignment log is large (issue #12): the time of
# ab_delete_experiment (and ab_clear_sticky_cache, the same DELETE) for an experiment
# with BENCH_USERS logged users beside another experiment's, and the VACUUM that gives
# the space back afterwards.
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

abtest_bench_build

abtest_header "bench cluster"
abtest_start_cluster "fsync = on" "jit = off"
abtest_psql -q -c "CREATE EXTENSION abtest"

abtest_header "$USERS logged users, then the delete"
# The log is filled directly (as the flush worker would have written it), then made
# durable and analysed, so that the delete is timed alone.
result="$(abtest_psql -qAt -F' ' <<SQL
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
SELECT clock_timestamp() AS t0 \gset
SELECT ab_delete_experiment('large');
SELECT extract(epoch FROM clock_timestamp() - :'t0');
SELECT clock_timestamp() AS t0 \gset
VACUUM abtest.assignments;
SELECT extract(epoch FROM clock_timestamp() - :'t0');
SELECT count(*) FROM abtest.assignments;
SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id WHERE e.name = 'kept';
SQL
)"
# The last five lines: the setup's own rows come first.
read -r size delete_s vacuum_s left kept <<<"$(grep -v '^$' <<<"$result" | tail -n 5 | tr '\n' ' ')"
if [ "$left" != 100000 ] || [ "$kept" != 100000 ]; then
    echo "bench: expected the kept experiment's 100000 rows to remain, found $left ($kept)" >&2
    exit 1
fi
pgver="$(abtest_psql -At -c 'SHOW server_version')"
{
    echo "# Deleting an experiment with a large log (bench/delete_experiment.sh)"
    echo
    echo "PostgreSQL $pgver, $(nproc) cores, fsync on, $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "| logged users | log before (table and indexes) | ab_delete_experiment | VACUUM afterwards |"
    echo "|---:|---:|---:|---:|"
    printf '| %s | %s MB | %.2f s | %.2f s |\n' "$USERS" "$(( size / 1048576 ))" "$delete_s" "$vacuum_s"
    echo
    echo "The other experiment's 100,000 users stay. The delete holds SHARE ROW EXCLUSIVE on the log:"
    echo "routing goes on (new users wait in the queue), flush workers and synchronous writes wait for it."
} | tee "$RESULTS"
