#!/usr/bin/env bash
# Demo: build, install, start a scratch cluster that stays up, route users.
# Usage: bash scripts/demo.sh          (re-running replaces the previous demo cluster)
#        bash scripts/demo.sh --stop   (stop the demo cluster and remove its files)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_ENV=/tmp/abtest-demo.env

# Read the recorded cluster (key=value lines). Parsed, not sourced: it lives in /tmp.
load_demo_env() {
    [ -f "$DEMO_ENV" ] || return 1
    [ -O "$DEMO_ENV" ] || { echo "ignoring $DEMO_ENV: not owned by us" >&2; return 1; }
    local k v
    while IFS='=' read -r k v; do
        case "$k" in
            ABTEST_TMP|ABTEST_PGDATA|PGHOST|PGPORT) export "$k=$v" ;;
        esac
    done <"$DEMO_ENV"
    [ -n "${ABTEST_TMP:-}" ] && [[ "$ABTEST_TMP" == /*/abtest.* ]]
}

stop_demo() {
    if load_demo_env; then
        abtest_log "stopping demo cluster in $ABTEST_TMP"
        abtest_stop_cluster
    fi
    rm -f "$DEMO_ENV"
}

case "${1:-}" in
    --stop) stop_demo; exit 0 ;;
    "") ;;
    *) echo "usage: bash scripts/demo.sh [--stop]" >&2; exit 2 ;;
esac

abtest_header "dependencies"
abtest_ensure_deps

abtest_header "build + install"
abtest_build_install

abtest_header "scratch cluster"
stop_demo
export ABTEST_NO_TRAP=1   # the demo cluster outlives this script
# shellcheck disable=SC2119 # no extra postgresql.conf lines
abtest_start_cluster
{
    echo "ABTEST_TMP=$ABTEST_TMP"
    echo "ABTEST_PGDATA=$ABTEST_PGDATA"
    echo "PGHOST=$PGHOST"
    echo "PGPORT=$PGPORT"
} >"$DEMO_ENV"

connect_help() {
    cat <<EOF
Connect:  psql -h $PGHOST -p $PGPORT -U postgres
Stop:     bash scripts/demo.sh --stop
   (or:   runuser -u postgres -- $ABTEST_PG_BIN/pg_ctl -D $ABTEST_PGDATA stop)
EOF
}

abtest_header "demo"
html_report="$ABTEST_TMP/checkout_v2.html"
# -e echoes each statement before its result.
if ! abtest_psql -e -v html_report="$html_report" <<'SQL'
CREATE EXTENSION abtest;

SELECT ab_create_experiment('checkout_v2', ARRAY['control','treatment'], ARRAY[50,50]);
SELECT ab_start('checkout_v2');

-- Route 10,000 users: the split should be close to 50/50.
SELECT ab_route_user('checkout_v2', 'user' || i) AS branch, count(*)
FROM generate_series(1, 10000) i GROUP BY 1 ORDER BY 1;

-- user42's bucket (0..9999) and branch: the same on every call, in every session.
SELECT ab_bucket('checkout_v2', 'user42') AS bucket, ab_route_user('checkout_v2', 'user42') AS branch;

-- Each user's visit: its latency and whether it converted (treatment converts more).
SELECT count(ab_record_query('checkout_v2', branch, 20 + abs(hashtext(u)) % 80,
                             abs(hashtext(u || ':buy')) % 100 < CASE branch WHEN 'treatment' THEN 13 ELSE 10 END))
FROM (SELECT 'user' || i AS u, ab_route_user('checkout_v2', 'user' || i) AS branch
        FROM generate_series(1, 10000) i) visits;

-- Significance, intervals, chance to win, sample ratio: what an analyst reads.
SELECT branch_b, round(success_rate_diff::numeric, 4) AS diff, round(p_value::numeric, 4) AS p_value,
       is_significant, round(prob_b_beats_a::numeric, 4) AS prob_b_beats_a
  FROM ab_compare('checkout_v2', 'control', 'treatment');
SELECT * FROM ab_report('checkout_v2');

-- Outcomes the application already stores, analysed per user. The demo pretends the
-- experiment started two weeks ago, and writes two weeks of orders: each user spends at
-- their own level (which also shows in the two weeks before), the treatment 8% more.
DO $$ BEGIN   -- the flush worker writes the assignment log behind routing: wait for it
    WHILE (SELECT count(*) FROM abtest.assignments) < 10000 LOOP PERFORM pg_sleep(0.1); END LOOP;
END $$;
UPDATE abtest.assignments SET assigned_at = assigned_at - interval '14 days';
UPDATE abtest.experiments SET started_at = started_at - interval '14 days' WHERE name = 'checkout_v2';
CREATE TABLE orders (customer text, amount numeric(10, 2), placed_at timestamptz);
INSERT INTO orders
SELECT a.user_id,
       round((10 + abs(hashtext(a.user_id || 'level')) % 90) * (1 + (abs(hashtext(a.user_id || n)) % 50) / 100.0)
             * CASE WHEN a.branch = 'treatment' AND k > 0 THEN 1.08 ELSE 1 END, 2),
       a.assigned_at + (k * 14 + abs(hashtext(a.user_id || n)) % 13) * interval '1 day' - interval '14 days'
  FROM abtest.assignments a, generate_series(0, 1) k, generate_series(1, 2) n
 WHERE abs(hashtext(a.user_id || 'buys')) % 100 < 60 AND abs(hashtext(a.user_id || 'buys' || k || n)) % 100 < 85;
SELECT ab_define_metric('revenue', 'orders', 'customer', 'placed_at', 'amount', conversion_window => '14 days');
SELECT ab_define_metric('order_count', 'orders', 'customer', 'placed_at', aggregation => 'count',
                        conversion_window => '14 days');
SELECT ab_define_ratio_metric('order_value', 'revenue', 'order_count');
SELECT ab_attach_metric('checkout_v2', 'revenue');
SELECT ab_attach_metric('checkout_v2', 'order_value', 'secondary');
-- One value per user (users without orders count as 0); CUPED uses each user's spend
-- in the two weeks before the assignment to take out what users brought with them.
SELECT branch, users, round(mean::numeric, 2) AS mean, round(diff::numeric, 2) AS diff,
       round(diff_ci_low::numeric, 2) AS ci_low, round(diff_ci_high::numeric, 2) AS ci_high,
       round(p_value::numeric, 4) AS p_value, round(variance_reduction::numeric, 3) AS variance_reduction
  FROM ab_analyze('checkout_v2', 'revenue', cuped => true);
SELECT branch, users, round(mean::numeric, 2) AS mean, round(diff::numeric, 2) AS diff,
       round(p_value::numeric, 4) AS p_value
  FROM ab_analyze('checkout_v2', 'revenue');
SELECT at::date AS day, branch, users, round(diff::numeric, 2) AS diff
  FROM ab_analyze_over_time('checkout_v2', 'revenue', '2 days') WHERE branch = 'treatment';
-- The whole picture as one self-contained page (charts as inline SVG).
\pset tuples_only on
\pset format unaligned
\o :html_report
SELECT ab_report_html('checkout_v2');
\o
\pset tuples_only off
\pset format aligned

-- Targeting: iOS users in Germany or Austria on app 4.2 or later, and a QA account
-- that always sees the treatment. Users outside are not counted.
SELECT ab_create_experiment('onboarding', ARRAY['control','treatment']);
SELECT ab_configure('onboarding', condition => '{"country": {"$in": ["DE", "AT"]}, "os": "iOS",
                                                  "app_version": {"$vgte": "4.2"}}');
SELECT ab_force('onboarding', 'qa_account', 'treatment');
SELECT ab_start('onboarding');
SELECT u AS user_id, a AS attributes, ab_route_user('onboarding', u, attributes => a::jsonb) AS branch
  FROM (VALUES ('anna', '{"country": "DE", "os": "iOS", "app_version": "4.3.1"}'),
               ('ben',  '{"country": "FR", "os": "iOS", "app_version": "4.3.1"}'),
               ('cleo', '{"country": "AT", "os": "iOS", "app_version": "4.1.9"}'),
               ('qa_account', '{}')) v(u, a);
-- Why did each get what they got? (counts nothing)
SELECT u AS user_id, x.* FROM unnest(ARRAY['anna', 'ben', 'cleo', 'qa_account']) u,
       ab_explain('onboarding', u, attributes => CASE u WHEN 'anna' THEN '{"country": "DE", "os": "iOS", "app_version": "4.3.1"}'
                                                        WHEN 'ben' THEN '{"country": "FR"}' ELSE '{}' END::jsonb) x;
SELECT branch, exposures FROM ab_branch_metrics('onboarding');

-- Three branches, no allocation given: an even split.
SELECT ab_create_experiment('homepage_hero', ARRAY['a','b','c']);

-- (abtest.experiment_overview has more columns: SELECT * to see them all.)
SELECT name, state, branches, allocation, strategy, sticky FROM abtest.experiment_overview;
SQL
then
    abtest_header "demo FAILED (cluster left running for inspection)"
    echo "server log: $ABTEST_TMP/server.log"
    connect_help
    exit 1
fi

abtest_header "the demo cluster is still running"
echo "HTML report: $html_report (open it in a browser)"
connect_help
