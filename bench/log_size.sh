#!/usr/bin/env bash
# The assignment log on disk: how much abtest.assignments (its table and both indexes)
# and the WAL that wrote it grow per million sticky users, for user ids of three
# shapes, written by the flush worker as routing queues them; and how fast it fills.
# Usage: bash bench/log_size.sh
#   BENCH_USERS   new users routed per shape (default 1000000)
# Prints a markdown table and writes it to bench/results-log-size.md.
set -euo pipefail
shopt -s inherit_errexit

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

USERS="${BENCH_USERS:-1000000}"
abtest_require_positive_ints BENCH_USERS "$USERS"
RESULTS="$ABTEST_REPO/bench/results-log-size.md"

abtest_bench_build

abtest_header "bench cluster"
# As bench/run.sh: a cache and a queue that hold a million new users at once, fsync on.
abtest_start_cluster "fsync = on" "shared_buffers = '256MB'" "abtest.sticky_cache_size = 4194304" \
    "abtest.assignment_queue_size = '256MB'" "abtest.max_databases = 1"
abtest_psql -q -c "CREATE EXTENSION abtest"

# name; SQL of the user id from i; what it stands for
shapes=(
    "short;'u' || i;a short key ('u1234567')"
    "email;'user' || i || '@example.com';an e-mail address"
    "uuid;md5(i::text)::uuid::text;a UUID as text"
)

rows=()
for shape in "${shapes[@]}"; do
    IFS=';' read -r name id_sql label <<<"$shape"
    abtest_header "$name: $USERS new users"
    # The sizes before and after, the WAL written between, and the times: routing ends
    # when the query returns, the log is complete when the flush worker has written all.
    result="$(abtest_psql -qAt -F' ' <<SQL
SELECT ab_create_experiment('size_$name', ARRAY['control', 'treatment']) IS NULL;
SELECT ab_start('size_$name');
CHECKPOINT;
CREATE TEMP TABLE before AS
SELECT pg_relation_size('abtest.assignments') AS heap, pg_relation_size('abtest.assignments_pkey') AS pkey,
       pg_relation_size('abtest.assignments_user_id') AS by_user, pg_current_wal_lsn() AS lsn,
       clock_timestamp() AS started;
SELECT count(ab_route_user('size_$name', $id_sql)) FROM generate_series(1, $USERS) i;
CREATE TEMP TABLE routed AS SELECT clock_timestamp() AS at;
DO \$\$
BEGIN
    WHILE (SELECT count(*) FROM abtest.assignments a JOIN abtest.experiments e ON e.id = a.experiment_id
            WHERE e.name = 'size_$name') < $USERS LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END
\$\$;
SELECT (SELECT round(avg(octet_length($id_sql)), 1) FROM generate_series(1, $USERS) i),
       pg_relation_size('abtest.assignments') - b.heap, pg_relation_size('abtest.assignments_pkey') - b.pkey,
       pg_relation_size('abtest.assignments_user_id') - b.by_user, pg_wal_lsn_diff(pg_current_wal_lsn(), b.lsn),
       extract(epoch FROM r.at - b.started), extract(epoch FROM clock_timestamp() - b.started)
  FROM before b, routed r;
SQL
)"
    read -r id_bytes heap pkey by_user wal route_s filled_s <<<"$(tail -n 1 <<<"$result")"
    rows+=("$(awk -v n="$name" -v l="$label" -v b="$id_bytes" -v h="$heap" -v p="$pkey" -v u="$by_user" \
        -v w="$wal" -v r="$route_s" -v f="$filled_s" -v users="$USERS" 'BEGIN {
            mb = 1048576 * users / 1000000
            printf "| %s (%s, %s bytes) | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.0f |",
                   n, l, b, h / mb, p / mb, u / mb, (h + p + u) / mb, w / mb, r, f, users / f }')")
    abtest_log "${rows[-1]}"
done

{
    echo "# Assignment log size"
    echo
    echo "$USERS new sticky users per shape, one experiment each, routed in one query and written by the"
    echo "flush worker ($(date -u +%Y-%m-%d), $("$ABTEST_PG_BIN/postgres" --version), $(nproc) cores, fsync on)."
    echo "MB per million users (MiB); times for the whole run of $USERS users."
    echo
    echo "| user id | table MB | primary key MB | user_id index MB | total MB | WAL MB | routing s | log complete s | users/s into the log |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} | tee "$RESULTS"
