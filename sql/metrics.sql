-- Metrics: recording query outcomes and events, reading them back, clearing them.

CREATE FUNCTION metrics_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT ab_create_experiment('m', ARRAY['control', 'fast', 'idle']) IS NOT NULL AS created;

-- No data yet: one row per branch, zeros, no timestamps.
SELECT * FROM ab_branch_metrics('m');
SELECT * FROM ab_event_metrics('m');
SELECT experiment, branch_count, total_queries, best_branch, best_success_rate, avg_latency_ms, duration
  FROM ab_summary('m');

-- 100 queries on control (latency 1..100 ms, every 4th fails), 10 on fast.
SELECT count(ab_record_query('m', 'control', g, g % 4 <> 0)) FROM generate_series(1, 100) g;
SELECT count(ab_record_query('m', 'fast', 2.5, true)) FROM generate_series(1, 10) g;
SELECT ab_record_query('m', 'fast', 0, false);  -- 0 ms is a valid latency

SELECT branch, query_count, success_count, failure_count, success_rate, error_rate, avg_latency_ms,
       min_latency_ms, max_latency_ms, first_query IS NOT NULL AS has_first, last_query >= first_query AS ordered
  FROM ab_branch_metrics('m');
-- The exact sum of the latencies (1.4), which a monitoring counter can follow.
SELECT branch, latency_sum_ms FROM ab_branch_metrics('m');

-- Percentiles within 2% of the exact nearest-rank ones (percentile_disc).
SELECT m.branch,
       abs(m.p50_latency_ms - e.p50) <= 0.02 * e.p50 AS p50_ok,
       abs(m.p95_latency_ms - e.p95) <= 0.02 * e.p95 AS p95_ok,
       abs(m.p99_latency_ms - e.p99) <= 0.02 * e.p99 AS p99_ok
  FROM ab_branch_metrics('m') m,
       (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY g::float8) AS p50,
               percentile_disc(0.95) WITHIN GROUP (ORDER BY g::float8) AS p95,
               percentile_disc(0.99) WITHIN GROUP (ORDER BY g::float8) AS p99
          FROM generate_series(1, 100) g) e
 WHERE m.branch = 'control';

-- Events: any finite value, negative included; sample standard deviation.
SELECT ab_record_event('m', 'control', 'revenue', v) FROM unnest(ARRAY[10, 20, 30, -5]::float8[]) v;
SELECT ab_record_event('m', 'fast', 'signup');  -- value defaults to 1
SELECT ab_record_event('m', 'fast', 'revenue', 42);
SELECT branch, event_name, count, sum, mean, round(stddev::numeric, 10) AS stddev FROM ab_event_metrics('m');
SELECT round(stddev_samp(v)::numeric, 10) AS expected_stddev FROM unnest(ARRAY[10, 20, 30, -5]::float8[]) v;

-- Summary: best branch by success rate (fast: 10/11 beats control: 75/100).
SELECT experiment, branch_count, total_queries, best_branch, round(best_success_rate::numeric, 6) AS best_rate,
       round(avg_latency_ms::numeric, 6) AS avg_latency, duration >= '0'::interval AS has_duration
  FROM ab_summary('m');
SELECT experiment, total_queries FROM ab_all_summaries() WHERE experiment = 'm';

-- Routing counts exposures; new sticky users are assigned users.
SELECT ab_start('m');
SELECT count(ab_route_user('m', 'user' || g)) FROM generate_series(1, 300) g;
SELECT count(ab_route_user('m', 'user' || g)) FROM generate_series(1, 300) g;
SELECT sum(exposures) AS exposures, sum(assigned_users) AS assigned FROM ab_branch_metrics('m');

-- ab_stats over this database's catalog.
SELECT total_experiments >= 1 AS some, active_experiments >= 1 AS active, experiments_tracked >= 1 AS tracked,
       total_queries_recorded >= 111 AS queries
  FROM ab_stats();

-- Refusals: a typo is an error, not a new garbage entry.
SELECT s AS statement, metrics_error(s) AS result FROM unnest(ARRAY[
  $q$SELECT ab_record_query('nope', 'control', 1, true)$q$,
  $q$SELECT ab_record_query('m', 'contrl', 1, true)$q$,
  $q$SELECT ab_record_query(NULL, 'control', 1, true)$q$,
  $q$SELECT ab_record_query('m', NULL, 1, true)$q$,
  $q$SELECT ab_record_query('m', 'control', NULL, true)$q$,
  $q$SELECT ab_record_query('m', 'control', 1, NULL)$q$,
  $q$SELECT ab_record_query('m', 'control', 'NaN', true)$q$,
  $q$SELECT ab_record_query('m', 'control', 'Infinity', true)$q$,
  $q$SELECT ab_record_query('m', 'control', -1, true)$q$,
  $q$SELECT ab_record_query('m', 'control', 1000000.001, true)$q$,
  $q$SELECT ab_record_query('m', 'control', 1e308, true)$q$,
  $q$SELECT ab_record_event('m', 'control', 'revenue', 'NaN')$q$,
  $q$SELECT ab_record_event('m', 'control', 'revenue', '-Infinity')$q$,
  $q$SELECT ab_record_event('m', 'control', 'revenue', 1e308)$q$,
  $q$SELECT ab_record_event('m', 'control', 'revenue', -1000000000000001)$q$,
  $q$SELECT ab_record_event('m', 'control', '', 1)$q$,
  $q$SELECT ab_record_event('m', 'control', NULL, 1)$q$,
  $q$SELECT ab_record_event('m', 'control', repeat('x', 64), 1)$q$,
  $q$SELECT ab_record_event('m', 'nope', 'revenue', 1)$q$,
  $q$SELECT * FROM ab_branch_metrics('nope')$q$,
  $q$SELECT * FROM ab_summary(NULL)$q$,
  $q$SELECT ab_clear_metrics('nope')$q$
]) s;

-- Nothing was counted by the refused calls.
SELECT branch, query_count FROM ab_branch_metrics('m');

-- At the bounds: latencies up to 1,000,000 ms, event values up to ±1e15, the smallest
-- denormal and -0 are accepted, and every counter and statistic stays finite.
SELECT ab_create_experiment('bounds', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT count(ab_record_query('bounds', 'control', v, true))
  FROM unnest(ARRAY[1000000, 1000000, 5e-324, '-0', 0]::float8[]) v;
SELECT count(ab_record_query('bounds', 'treatment', '-0', g % 2 = 0)) FROM generate_series(1, 3) g;
SELECT count(ab_record_event('bounds', b, 'revenue', v))
  FROM unnest(ARRAY['control', 'treatment']) b, unnest(ARRAY[1e15, 1e15, -1e15, 5e-324, '-0']::float8[]) v;
SELECT branch, query_count, avg_latency_ms, min_latency_ms, max_latency_ms, p50_latency_ms, p95_latency_ms,
       p99_latency_ms FROM ab_branch_metrics('bounds');
SELECT branch, event_name, count, sum, mean, stddev FROM ab_event_metrics('bounds');
SELECT experiment, total_queries, avg_latency_ms FROM ab_summary('bounds');
SELECT sqlstate_of FROM unnest(ARRAY[
  metrics_error($q$SELECT ab_record_query('bounds', 'control', 1e308, true)$q$),
  metrics_error($q$SELECT ab_record_event('bounds', 'control', 'revenue', 1e308)$q$)]) sqlstate_of;
SELECT sum(query_count) AS queries_after_refusals FROM ab_branch_metrics('bounds');
SELECT ab_delete_experiment('bounds');

-- A rolled-back clear clears nothing; a committed one clears counters and tables.
BEGIN;
SELECT ab_clear_metrics('m');
ROLLBACK;
SELECT sum(query_count) AS after_rollback FROM ab_branch_metrics('m');
BEGIN;
SAVEPOINT s;
SELECT ab_clear_metrics('m');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT sum(query_count) AS after_savepoint_rollback FROM ab_branch_metrics('m');
SELECT ab_clear_metrics('m');
SELECT sum(query_count) AS queries, sum(exposures) AS exposures FROM ab_branch_metrics('m');
SELECT count(*) AS events FROM ab_event_metrics('m');
SELECT coalesce(sum(query_count), 0) AS persisted FROM abtest.branch_metrics m JOIN abtest.experiments e ON e.id = m.experiment_id
 WHERE e.name = 'm';

-- ab_clear_all_metrics clears every experiment of the database.
SELECT ab_create_experiment('m2', ARRAY['a', 'b']) IS NOT NULL AS created;
SELECT ab_record_query('m2', 'a', 1, true), ab_record_query('m', 'control', 1, true);
SELECT ab_clear_all_metrics();
SELECT (SELECT sum(query_count) FROM ab_branch_metrics('m')) AS m, (SELECT sum(query_count) FROM ab_branch_metrics('m2')) AS m2;

-- Deleting an experiment removes its counters.
SELECT ab_record_query('m2', 'a', 1, true);
SELECT ab_delete_experiment('m2');
SELECT ab_create_experiment('m2', ARRAY['a', 'b']) IS NOT NULL AS recreated;
SELECT branch, query_count FROM ab_branch_metrics('m2');

SELECT ab_delete_experiment('m'), ab_delete_experiment('m2');
DROP FUNCTION metrics_error(text);
