-- Outcome analysis on the application's own tables: metrics as catalog objects, every
-- refusal, per-user values at the exact edges of their windows, users without facts,
-- caps, ratio metrics, CUPED, the analysis over time, a renamed and a dropped source.
-- The statistics themselves are checked against SciPy in t/014_outcome_analysis.pl.

-- sqlstate_of(statement): the SQLSTATE and message of the error it raises, or 'ok'.
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- An experiment whose assignment log is written by hand, at fixed instants in the past:
-- four users in control, four in treatment, assigned at noon on 1 February 2026.
SELECT ab_create_experiment('shop', ARRAY['control', 'treatment']) IS NOT NULL AS created;
SELECT ab_configure('shop', min_sample_size => 2);
SELECT ab_start('shop');
UPDATE abtest.experiments SET started_at = '2026-02-01 00:00+00' WHERE name = 'shop';
INSERT INTO abtest.assignments (experiment_id, user_id, branch, assigned_at)
SELECT e.id, u.user_id, u.branch, '2026-02-01 12:00+00'
  FROM abtest.experiments e,
       (VALUES ('1', 'control'), ('2', 'control'), ('3', 'control'), ('4', 'control'),
               ('5', 'treatment'), ('6', 'treatment'), ('7', 'treatment'), ('8', 'treatment')) AS u (user_id, branch)
 WHERE e.name = 'shop';

-- The application's orders: the user id is an integer, compared as text with the log.
CREATE TABLE orders (id serial PRIMARY KEY, customer integer, amount numeric(10, 2),
                     placed_at timestamptz, placed_local timestamp);
INSERT INTO orders (customer, amount, placed_at) VALUES
    (1, 10, '2026-02-01 12:00+00'),        -- exactly at assignment: counted
    (1, 5, '2026-02-08 11:59:59+00'),      -- just inside a 7-day window
    (1, 100, '2026-02-08 12:00+00'),       -- exactly at the window's end: not in a 7-day window
    (2, 20, '2026-02-01 11:59:59+00'),     -- before assignment: pre-period only
    (3, 30, '2026-02-02 00:00+00'),
    (5, 40, '2026-02-02 00:00+00'),
    (5, 60, '2026-02-03 00:00+00'),
    (6, 1000, '2026-02-04 00:00+00'),      -- a heavy tail, for the caps
    (7, NULL, '2026-02-04 00:00+00'),      -- a fact without a value: a row, no amount
    (99, 500, '2026-02-02 00:00+00');      -- a user outside the experiment: never counted
UPDATE orders SET placed_local = placed_at AT TIME ZONE 'UTC';

-- 1. Definitions.
SELECT ab_define_metric('revenue', 'orders', 'customer', 'placed_at', 'amount',
                        description => 'Order amounts');
SELECT ab_define_metric('revenue_7d', 'orders', 'customer', 'placed_at', 'amount',
                        conversion_window => '7 days');
SELECT ab_define_metric('order_count', 'orders', 'customer', 'placed_at', aggregation => 'count');
SELECT ab_define_metric('bought', 'orders', 'customer', 'placed_at', aggregation => 'any');
SELECT ab_define_metric('largest_order', 'orders', 'customer', 'placed_at', 'amount', aggregation => 'max');
SELECT ab_define_metric('revenue_capped', 'orders', 'customer', 'placed_at', 'amount', cap => 50);
SELECT ab_define_metric('revenue_p75', 'orders', 'customer', 'placed_at', 'amount', cap_percentile => 0.75);
SELECT ab_define_metric('revenue_local', 'orders', 'customer', 'placed_local', 'amount');
SELECT ab_define_metric('refunds', 'orders', 'customer', 'placed_at', higher_is_better => false);
SELECT ab_define_ratio_metric('order_value', 'revenue', 'order_count', 'Revenue per order');
SELECT name, kind, source, source_exists, user_column, time_column, value_column, aggregation,
       conversion_window, cap, cap_percentile, numerator, denominator, higher_is_better, attached_to
  FROM abtest.metric_overview ORDER BY name;

-- 2. Every refusal.
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'no_such_table', 'customer', 'placed_at')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'nobody', 'placed_at')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'amount')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', 'placed_at')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', 'ctid')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders_id_seq', 'customer', 'placed_at')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', aggregation => 'avg')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', cap => 10, cap_percentile => 0.9)$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', cap => 0)$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', cap => 'NaN')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', cap_percentile => 1)$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', conversion_window => '-1 day')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', conversion_window => '1 month -40 days')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('x', 'orders', 'customer', 'placed_at', aggregation => NULL)$$);
SELECT sqlstate_of($$SELECT ab_define_metric('', 'orders', 'customer', 'placed_at')$$);
SELECT sqlstate_of($$SELECT ab_define_metric('revenue', 'orders', 'customer', 'placed_at')$$);
SELECT sqlstate_of($$SELECT ab_define_ratio_metric('x', 'revenue', 'no_such_metric')$$);
SELECT sqlstate_of($$SELECT ab_define_ratio_metric('x', 'order_value', 'revenue')$$);
SELECT sqlstate_of($$SELECT ab_attach_metric('shop', 'no_such_metric')$$);
SELECT sqlstate_of($$SELECT ab_attach_metric('no_such_experiment', 'revenue')$$);
SELECT sqlstate_of($$SELECT ab_attach_metric('shop', 'revenue', 'primary')$$);
SELECT sqlstate_of($$SELECT ab_detach_metric('shop', 'revenue')$$);
SELECT sqlstate_of($$SELECT ab_drop_metric('no_such_metric')$$);
SELECT sqlstate_of($$SELECT * FROM ab_analyze('shop', 'no_such_metric')$$);
SELECT sqlstate_of($$SELECT * FROM ab_analyze('shop', 'order_value', cuped => true)$$);
SELECT sqlstate_of($$SELECT * FROM ab_analyze('shop', 'revenue', cuped => true, cuped_window => '0 days')$$);
SELECT sqlstate_of($$SELECT * FROM ab_analyze_over_time('shop', 'revenue', '-1 hour')$$);
SELECT sqlstate_of($$SELECT * FROM ab_analyze_over_time('shop', 'revenue', '1 second')$$);
-- An experiment without an assignment log, and one that has not started.
SELECT ab_create_experiment('flat', ARRAY['a', 'b']) IS NOT NULL AS created;
SELECT ab_configure('flat', sticky => false);
SELECT sqlstate_of($$SELECT * FROM ab_analyze('flat', 'revenue')$$);
SELECT ab_create_experiment('later', ARRAY['a', 'b']) IS NOT NULL AS created;
SELECT sqlstate_of($$SELECT * FROM ab_analyze_over_time('later', 'revenue')$$);
SELECT branch, users, mean FROM ab_analyze('later', 'revenue');

-- 3. Per-user values. Every assigned user counts, with 0 without facts; user 99 never.
SELECT branch, users, mean, round(stddev::numeric, 6) AS stddev FROM ab_analyze('shop', 'revenue');
-- A 7-day window: user 1 keeps 10 + 5, not the 100 at the window's end.
SELECT branch, users, mean FROM ab_analyze('shop', 'revenue_7d');
SELECT branch, users, mean FROM ab_analyze('shop', 'order_count');
SELECT branch, users, mean FROM ab_analyze('shop', 'bought');
SELECT branch, users, mean FROM ab_analyze('shop', 'largest_order');
-- Caps: user 1's 115 and user 6's 1000 become 50. The users with a fact in the window
-- have 0 (user 7), 30, 100, 115 and 1000: their 75th percentile, the cap, is 115.
SELECT branch, users, mean FROM ab_analyze('shop', 'revenue_capped');
SELECT branch, users, round(mean::numeric, 6) AS mean FROM ab_analyze('shop', 'revenue_p75');
-- A timestamp without time zone is read in the session's TimeZone (here PST8PDT, so the
-- UTC wall times are 8 hours later): user 2's order now falls after the assignment.
SELECT branch, users, mean FROM ab_analyze('shop', 'revenue_local');
-- A ratio: revenue per order, per branch.
SELECT branch, users, round(mean::numeric, 6) AS mean, diff IS NOT NULL AS compared FROM ab_analyze('shop', 'order_value');
-- The comparison columns: NULL for the control, filled for the treatment.
SELECT branch, diff, diff_ci_low < diff AND diff < diff_ci_high AS inside, p_value BETWEEN 0 AND 1 AS p,
       adjusted_p_value = p_value AS one_challenger, is_significant,
       prob_beats_control BETWEEN 0 AND 1 AS prob, sequential_p_value BETWEEN 0 AND 1 AS sequential,
       variance_reduction
  FROM ab_analyze('shop', 'revenue');
-- CUPED: user 2's pre-period order is the covariate; the means move, the users do not.
SELECT branch, users, round(mean::numeric, 6) AS mean, round(variance_reduction::numeric, 6) AS variance_reduction
  FROM ab_analyze('shop', 'revenue', cuped => true, cuped_window => '1 day');
SELECT branch, users, mean, variance_reduction FROM ab_analyze('shop', 'revenue', cuped => true, cuped_window => '1 second');

-- 4. Over time: cumulative at each day since the start (midnight UTC, printed in
--    PST8PDT). Users count from the first boundary after their assignment, facts from
--    the first boundary after their time (a fact exactly at a boundary counts from the next).
SELECT at, branch, users, mean, diff IS NOT NULL AS compared
  FROM ab_analyze_over_time('shop', 'revenue', '1 day') WHERE at < '2026-02-06' ORDER BY at, branch;
SELECT at, branch, users, round(mean::numeric, 6) AS mean
  FROM ab_analyze_over_time('shop', 'order_value', '1 day') WHERE at BETWEEN '2026-02-02' AND '2026-02-04' ORDER BY at, branch;
-- The last point is now, and equals ab_analyze.
SELECT o.branch, o.users = a.users AS users, o.mean = a.mean AS mean, o.diff IS NOT DISTINCT FROM a.diff AS diff
  FROM (SELECT * FROM ab_analyze_over_time('shop', 'revenue_p75', '1 day') WHERE at = now()) o
  JOIN ab_analyze('shop', 'revenue_p75') a USING (branch) ORDER BY o.branch;

-- 5. Attaching: roles, changing the role, detaching; a metric in use cannot be dropped.
SELECT ab_attach_metric('shop', 'revenue');
SELECT ab_attach_metric('shop', 'refunds', role => 'guardrail');
SELECT ab_attach_metric('shop', 'order_value', 'secondary');
SELECT ab_attach_metric('shop', 'order_value', 'guardrail');
SELECT name, attached_to FROM abtest.metric_overview WHERE attached_to <> '{}' ORDER BY name;
SELECT sqlstate_of($$SELECT ab_drop_metric('revenue')$$);
SELECT ab_detach_metric('shop', 'order_value');
SELECT ab_drop_metric('order_value');
SELECT count(*) AS metrics FROM abtest.metrics;

-- 6. The source is kept by OID: renaming it keeps the metric; dropping it is reported
--    when the metric is analysed, and the overview shows it.
ALTER TABLE orders RENAME TO purchases;
SELECT branch, users, mean FROM ab_analyze('shop', 'revenue');
SELECT name, source FROM abtest.metric_overview WHERE name = 'revenue';
ALTER TABLE purchases RENAME COLUMN amount TO total;
SELECT sqlstate_of($$SELECT * FROM ab_analyze('shop', 'revenue')$$);
ALTER TABLE purchases RENAME COLUMN total TO amount;
DROP TABLE purchases;
SELECT regexp_replace(sqlstate_of($$SELECT * FROM ab_analyze('shop', 'revenue')$$), 'OID \d+', 'OID n');
SELECT name, source_exists FROM abtest.metric_overview WHERE name = 'revenue';

-- 7. Deleting an experiment detaches its metrics.
SELECT ab_delete_experiment('shop');
SELECT count(*) AS attachments FROM abtest.experiment_metrics;
DROP FUNCTION sqlstate_of(text);
